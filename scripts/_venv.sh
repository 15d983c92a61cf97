# Sourced by the README commands: create/reuse ./.venv and install the package with its extras.
# PYTHON selects the interpreter (default python3, >= 3.10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test,docs,video]"
