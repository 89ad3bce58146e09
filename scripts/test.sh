#!/usr/bin/env bash
# Stage 1, the README's test command: set up a virtual environment and run the unit tests and
# the equivariance property tests (hypothesis profile from SESN_HYPOTHESIS_PROFILE, default
# "ci"), all but the tests marked slow. Stage 2 (scripts/test-full.sh) runs the rest; CI
# (.ci/run) runs both.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,bench]'
start=$(date +%s)
.venv/bin/python -m pytest -m "not slow"
echo "stage 1 (pytest -m 'not slow'): $(( $(date +%s) - start )) s"
