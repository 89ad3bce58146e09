#!/usr/bin/env bash
# Stage 2: what stage 1 (scripts/test.sh) leaves out. The slow end-to-end tests (reports,
# plug-ins in every command, DDP, kill and resume), the mutation run (the equivariance tests
# once per planted bug: every mutant must make them fail), the GPU check script's CPU dry run
# and the benchmark suite in its quick mode (every benchmark runs once). Uses the .venv of
# stage 1 (creates it when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e '.[test,bench]'
fi
start=$(date +%s)
.venv/bin/python -m pytest -m slow
.venv/bin/python -m equivariance_tests.mutants run
PYTHON=.venv/bin/python bash scripts/gpu-check.sh --dry-run   # the GPU script's plumbing, on CPU
SESN_BENCH_QUICK=1 .venv/bin/python -m pytest bench --benchmark-disable -q
echo "stage 2: $(( $(date +%s) - start )) s"
