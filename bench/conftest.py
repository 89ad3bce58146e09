"""Shared machinery of the benchmarks: timing with device synchronisation, extra_info."""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

from settings import SETTINGS, bench_budget  # noqa: E402

from sesn.allocator import configure_cpu_allocator  # noqa: E402

# before any case allocates: every row then sees the same allocator (docs/speed.md)
ALLOCATOR = configure_cpu_allocator()

from sesn.flops import count_flops  # noqa: E402
from sesn.plugin_loader import load_plugins  # noqa: E402

load_plugins()  # $SESN_IMPORT and 'sesn.plugins' entry points: a user's models and methods join the suite
from sesn.nn import dispatch  # noqa: E402


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def environment() -> dict:
    return {
        "device": torch.cuda.get_device_name(0)
        if SETTINGS.cuda
        else f"cpu ({dispatch.cpu_model()}, {SETTINGS.threads} threads)",
        "cpu_model": dispatch.cpu_model() or platform.machine(),
        "cpu_flags": " ".join(dispatch.cpu_flags()),
        "device_type": SETTINGS.device.type,
        "torch": torch.__version__,
        "cuda": torch.version.cuda if SETTINGS.cuda else None,
        "quick": SETTINGS.quick,
        "allocator": ALLOCATOR,
    }


def run_case(benchmark, fn, *, rounds: int, info: dict, flops_fn=None, record_auto: bool = False) -> None:
    """Time ``fn`` (synchronising CUDA inside the timed call), record extra_info: the
    environment, FLOPs of one call (corrected counter), peak memory; with ``record_auto``
    the path "auto" measured and picked for each layer (dispatch starts afresh; one untimed
    call pays for the measurement, so the FLOPs counted next are those of one call on the
    picked paths, not of the candidates auto timed)."""
    if record_auto:
        dispatch.clear()
        fn()

    def timed():
        out = fn()
        if SETTINGS.cuda:
            torch.cuda.synchronize()
        return out

    flops, per_op = count_flops(flops_fn or fn)
    if SETTINGS.cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    benchmark.extra_info.update(environment())
    benchmark.extra_info.update(info)
    benchmark.extra_info["flops"] = flops
    benchmark.extra_info["conv_flops"] = sum(v for k, v in per_op.items() if "convolution" in k)
    benchmark.pedantic(timed, rounds=rounds, iterations=1, warmup_rounds=0 if SETTINGS.quick else 1)
    if record_auto:
        benchmark.extra_info["auto_picks"] = [
            f"{k[0]} {k[2]}->{k[3]} in {list(k[7])}{' grad' if k[10] else ''}: {v}"
            for k, v in dispatch.choices().items()
        ]
    if SETTINGS.cuda:
        benchmark.extra_info["peak_memory_bytes"] = torch.cuda.max_memory_allocated()
        benchmark.extra_info["memory_kind"] = "cuda max_memory_allocated"
    else:
        benchmark.extra_info["peak_memory_bytes"] = _rss_bytes()
        benchmark.extra_info["peak_rss_process_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        benchmark.extra_info["memory_kind"] = "process RSS after the case"


@pytest.fixture
def settings():
    return SETTINGS


_START = time.monotonic()


@pytest.fixture(autouse=True)
def _time_budget():
    """``SESN_BENCH_BUDGET_S``: once that many seconds have passed since the session began,
    the remaining cases are skipped, each naming the budget (a lent GPU's time is bounded; the
    JSON of what ran is still written)."""
    budget = bench_budget()
    if budget and time.monotonic() - _START > budget:
        pytest.skip(f"SESN_BENCH_BUDGET_S={budget:g} s spent before this case")
