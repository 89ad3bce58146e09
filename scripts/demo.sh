#!/usr/bin/env bash
# Set up a virtual environment and run the main job: the equivariance report on
# built-in smooth random fields (no download). Output: results/equivariance/.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e .
.venv/bin/sesn report equivariance "$@"
