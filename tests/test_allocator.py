"""sesn.allocator: heap-only glibc malloc, so a large tensor reuses freed memory instead of
page-faulting fresh pages on every call (the effect the benchmarks and docs/speed.md
rely on). Each check runs in a fresh interpreter: the setting is process-wide."""

import os
import subprocess
import sys

import pytest

from sesn.allocator import _glibc

PROBE = """
import resource, sys, torch
from sesn.allocator import configure_cpu_allocator
print(configure_cpu_allocator())
x = torch.randn(16 * 2**20)  # 64 MiB: above glibc's largest mmap threshold (32 MiB)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(12):  # the heap settles within a few calls
    y = x * 2; del y
f0 = faults()
for _ in range(5):
    y = x * 2; del y
print((faults() - f0) / 5)
"""

pytestmark = pytest.mark.skipif(_glibc() is None, reason="the options are glibc's")


def _probe(**env) -> tuple[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, "LD_PRELOAD": "", **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    state, faults = out.stdout.strip().splitlines()[-2:]
    return state, float(faults)


def test_configured_allocator_reuses_large_buffers():
    """Up to three fresh interpreters, the first that reuses counts: rarely a probe fails and
    the cause was not found (where the kernel places the heap may decide it); a wrong
    configuration faults on every call in every interpreter (16384 per result)."""
    seen = []
    for _ in range(3):
        state, faults = _probe(SESN_ALLOCATOR="")
        assert state.startswith("glibc") and "M_MMAP_MAX=0" in state
        seen.append(faults)
        if faults < 1000:
            break
    assert min(seen) < 1000, f"page faults per 64 MiB result in each interpreter: {seen}; freed memory was not reused"


def test_system_allocator_is_left_alone_and_faults_on_large_buffers():
    """The control: without the configuration every 64 MiB result is fresh pages (16384 of
    4 KiB), so the test above can tell the two apart."""
    state, faults = _probe(SESN_ALLOCATOR="system")
    assert state == "system default (SESN_ALLOCATOR=system)"
    assert faults > 8000


def test_preloaded_allocator_is_not_touched():
    state, _ = _probe(LD_PRELOAD="/nonexistent/libjemalloc.so.2")
    assert state.startswith("preloaded")


CHOICE = """
import sys
from sesn.cli import main
from sesn.allocator import allocator_state
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(allocator_state())
"""


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["report", "bench", "/nonexistent.json"], "not configured"),  # a report does not gain from it
        (["--cpu-allocator", "heap", "report", "bench", "/nonexistent.json"], "M_MMAP_MAX=0"),
        (["train", "--help"], "M_MMAP_MAX=0"),  # training gains: heap by default
        (["--cpu-allocator=system", "train", "--help"], "system default (--cpu-allocator=system)"),
    ],
    ids=["report-default", "report-heap", "train-default", "train-system"],
)
def test_the_allocator_is_a_per_command_choice(argv, expected):
    env = {k: v for k, v in os.environ.items() if k != "SESN_ALLOCATOR"}
    out = subprocess.run([sys.executable, "-c", CHOICE, *argv], env={**env, "LD_PRELOAD": ""}, capture_output=True,
                         text=True)  # fmt: skip
    assert expected in out.stdout.strip().splitlines()[-1], (out.stdout, out.stderr)
    assert "CPU allocator:" not in out.stdout + out.stderr  # announced when a run starts, not by the CLI


def test_a_bad_allocator_choice_is_refused():
    from sesn.cli import main

    assert main(["--cpu-allocator", "jemalloc", "report", "bench", "x.json"]) == 2
