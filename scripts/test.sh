#!/usr/bin/env bash
# Set up a virtual environment and run the whole test suite: unit tests, the
# equivariance property tests (hypothesis profile from SESN_HYPOTHESIS_PROFILE,
# default "ci"), the mutation run (the equivariance tests once per planted bug: every
# mutant must make them fail), the GPU check script's CPU dry run, and the benchmark suite in
# its quick mode (every benchmark runs once).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test,bench]'
.venv/bin/python -m pytest
.venv/bin/python -m equivariance_tests.mutants run
PYTHON=.venv/bin/python bash scripts/gpu-check.sh --dry-run   # the GPU script's plumbing, on CPU
SESN_BENCH_QUICK=1 .venv/bin/python -m pytest bench --benchmark-disable -q
