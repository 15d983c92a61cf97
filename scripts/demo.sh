#!/usr/bin/env bash
# Set up ./.venv and run the demo (extra arguments go to `sb3-crptpro demo`).
source "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
sb3-crptpro demo "$@"
