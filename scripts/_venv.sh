# Sourced by the README commands: create/reuse the virtualenv and install the package with its extras.
# PYTHON selects the interpreter (default python3, >= 3.10); VENV the virtualenv folder (default .venv).
# The install runs only when needed: a new virtualenv, a changed pyproject.toml, or a package that does not import
# from this checkout (a stamp in the virtualenv records what was installed); SB3_CRPTPRO_REINSTALL=1 forces it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
stamp="$VENV/.sb3_crptpro_install"
wanted="$(pwd) $(python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')"
installed_here() {  # imported from outside the checkout, the package must still come from it (editable install)
  (cd / && REPO="$OLDPWD" python -c 'import os, pathlib, sys, sb3_crptpro
sys.exit(pathlib.Path(sb3_crptpro.__file__).resolve().parents[1] != pathlib.Path(os.environ["REPO"]).resolve())') 2>/dev/null
}
if [ "${SB3_CRPTPRO_REINSTALL:-0}" = 1 ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ] || ! installed_here; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -e ".[test,docs,video]"
  echo "$wanted" > "$stamp"
fi
