# Sourced by the README commands: create/reuse the virtualenv and install the package with its extras.
# PYTHON selects the interpreter (default python3, >= 3.10); VENV the virtualenv folder (default .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test,docs,video]"
