"""The benchmark suite's time guard and full-size settings (scripts/gpu-check.sh --stages bench-full)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench(env_extra, *args):
    env = {**os.environ, "SESN_BENCH_QUICK": "1", "SESN_BENCH_DEVICE": "cpu", **env_extra}
    return subprocess.run([sys.executable, "-m", "pytest", "bench/bench_models.py", "-k", "test_stir_model", "-q",
                           "-p", "no:cacheprovider", "--benchmark-disable", "-rs", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)  # fmt: skip


def test_bench_budget_skips_the_remaining_cases_naming_it():
    r = _bench({"SESN_BENCH_BUDGET_S": "0.001"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SESN_BENCH_BUDGET_S=0.001 s spent before this case" in r.stdout and "passed" not in r.stdout
    r = _bench({"SESN_BENCH_BUDGET_S": "0"})  # no budget: every case runs
    assert r.returncode == 0 and "4 passed" in r.stdout, r.stdout + r.stderr


def test_bench_full_settings():
    code = ("import sys; sys.path.insert(0, 'bench'); from settings import SETTINGS as S; "
            "print(S.full, S.wrn_batch, S.rounds, S.slow_rounds)")  # fmt: skip
    env = {**os.environ, "SESN_BENCH_DEVICE": "cpu", "SESN_BENCH_QUICK": "0"}
    out = lambda **kw: subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, **kw},  # noqa: E731
                                      capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out().stdout.split() == ["False", "2", "3", "1"]
    assert out(SESN_BENCH_FULL="1", SESN_BENCH_ROUNDS="5").stdout.split() == ["True", "128", "5", "5"]
    bad = out(SESN_BENCH_ROUNDS="-1")
    assert bad.returncode != 0 and "SESN_BENCH_ROUNDS" in bad.stderr
