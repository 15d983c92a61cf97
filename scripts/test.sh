#!/usr/bin/env bash
# Set up ./.venv and run every check: lint, format, tests, docs (extra arguments go to pytest).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
ruff check .
ruff format --check .
python -m pytest "$@"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
