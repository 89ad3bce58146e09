"""The benchmark settings, from the environment (read through :mod:`sesn.settings`):

* ``SESN_BENCH_QUICK=1``: tiny sizes and one round per case (CI: checks every benchmark
  runs; combine with ``--benchmark-disable``);
* ``SESN_BENCH_DEVICE``: ``cpu`` or ``cuda`` (default: cuda when available, else cpu);
* ``SESN_BENCH_THREADS``: CPU threads (default: torch's default);
* ``SESN_BENCH_FULL=1``: every group at its paper batch (WRN-16-8 at 128 where it is 32 on
  CUDA and 2 on CPU by default) and, on CUDA, the STIR group in AMP too;
* ``SESN_BENCH_ROUNDS``: timed rounds per case (default: 20 on CUDA, 3 on CPU; the slow
  groups 10 / 1).
"""

from __future__ import annotations

import dataclasses

import torch

from sesn import settings as sesn_settings


@dataclasses.dataclass(frozen=True)
class Settings:
    quick: bool
    full: bool
    device: torch.device
    mnist_batch: int
    wrn_batch: int
    stir_batch: int
    rounds: int
    slow_rounds: int
    threads: int

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def _load() -> Settings:
    quick = sesn_settings.bench_quick()
    want = sesn_settings.bench_device() or ("cuda" if torch.cuda.is_available() else "cpu")
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("SESN_BENCH_DEVICE=cuda but no CUDA device is available")
    threads = sesn_settings.bench_threads()
    if threads:
        torch.set_num_threads(threads)
    cuda = want == "cuda"
    full = sesn_settings.bench_full()
    rounds = sesn_settings.bench_rounds()
    if rounds < 0:
        raise ValueError(f"SESN_BENCH_ROUNDS must be >= 0, got {rounds}")
    return Settings(
        quick=quick,
        full=full,
        device=torch.device(want),
        mnist_batch=2 if quick else 128,
        wrn_batch=1 if quick else (128 if full else (32 if cuda else 2)),
        stir_batch=2 if quick else 16,
        rounds=1 if quick else (rounds or (20 if cuda else 3)),
        slow_rounds=1 if quick else (rounds or (10 if cuda else 1)),
        threads=torch.get_num_threads(),
    )


SETTINGS = _load()


def bench_budget() -> float:
    """``SESN_BENCH_BUDGET_S`` (0: none)."""
    value = sesn_settings.get("SESN_BENCH_BUDGET_S") or "0"
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"SESN_BENCH_BUDGET_S must be a number of seconds, got {value!r}") from None
