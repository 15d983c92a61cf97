#!/usr/bin/env bash
# Set up ./.venv and run every check: lint, format, tests, docs (extra arguments go to pytest).
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  cat <<'USAGE'
usage: bash scripts/test.sh [PYTEST_ARGS...]

Create or reuse ./.venv (installing the package only when pyproject.toml changed), then run ruff check, ruff format
--check, pytest with PYTEST_ARGS (e.g. `-m "not slow"`, `tests/app`, `-x`) and the strict docs build.
Environment: PYTHON (interpreter for a new .venv), VENV (its folder), SB3_CRPTPRO_REINSTALL=1 (force the install).
USAGE
  exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ruff check .
ruff format --check .
python -m pytest "$@"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
