"""The CPU memory allocator's configuration, which changes SESN's speed on CPU.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves every request
above its mmap threshold (dynamic, at most 32 MiB) with a fresh ``mmap``: each call then
page-faults and zeroes its buffer again. A scale-equivariant layer's outputs are S times a
CNN's (``[B, C, S, H, W]``), so at batch 128 they cross that threshold where the CNN's
do not, and a training step spends much of its time faulting in fresh pages (measured in
docs/speed.md, "CPU memory allocator").
The threshold also moves with what the process did before, so a benchmark row depended on
the rows before it.

:func:`configure_cpu_allocator` switches glibc to serving everything from its heap
(``M_MMAP_MAX = 0``) and keeps freed memory for reuse (``M_TRIM_THRESHOLD`` = 2 GiB):
fast and independent of history, at the cost that the process keeps its peak heap (on a
shared node its resident memory stays at its peak). It is a choice, not a default of the
library: the commands that gain from it (``sesn train``, ``sesn reproduce``, ``sesn bench
generalization``) and the benchmarks turn it on, print it once and record it in every run
record and benchmark row; the other commands leave malloc alone. ``--cpu-allocator
{heap,system}`` (or ``SESN_ALLOCATOR``) overrides that per command. Library users can call
it, set the same options through the environment (``MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=...``), or preload jemalloc/tcmalloc, as PyTorch's CPU performance
guide suggests.
"""

from __future__ import annotations

import ctypes
import os
import sys

from sesn import settings

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest value, about 2 GiB
PRELOADED = ("jemalloc", "tcmalloc", "mimalloc")

_state: str | None = None


def _glibc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        get_version = libc.gnu_get_libc_version
    except (OSError, AttributeError):
        return None  # not glibc (musl, ...): its malloc has no such options
    get_version.restype = ctypes.c_char_p
    return libc, get_version().decode()


def configure_cpu_allocator(choice: str | None = None) -> str:
    """Apply ``choice`` (``"heap"`` or ``"system"``; default: ``SESN_ALLOCATOR``, else
    ``"heap"``) once per process; return a description of the allocator in use (recorded with
    run records and benchmark results). Never raises for the platform: where the options do
    not apply (not glibc, a preloaded allocator, ``system``) it says so and changes nothing."""
    global _state
    if _state is not None:
        return _state
    if choice is None:
        choice, origin = settings.allocator() or "heap", "SESN_ALLOCATOR"
    else:
        origin = "--cpu-allocator"
    if choice not in ("heap", "system"):
        raise ValueError(f"the CPU allocator must be 'heap' or 'system', got {choice!r}")
    preload = os.environ.get("LD_PRELOAD", "")
    found = _glibc()
    if choice == "system":
        _state = f"system default ({origin}=system)"
    elif any(name in preload for name in PRELOADED):
        _state = f"preloaded ({preload})"
    elif found is None:
        _state = "system default (not glibc)"
    else:
        libc, version = found
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        _state = (
            f"glibc {version} heap only (M_MMAP_MAX=0, M_TRIM_THRESHOLD={TRIM_THRESHOLD})"
            if ok
            else f"glibc {version} default (mallopt refused)"
        )
    return _state


_announced = False


def announce() -> None:
    """Print, once per process, which CPU allocator is in use (the training commands call it
    when a run starts on the CPU; the same text goes into the run's record)."""
    global _announced
    if not _announced:
        _announced = True
        print(f"CPU allocator: {allocator_state()}", flush=True)


def allocator_state() -> str:
    """What :func:`configure_cpu_allocator` did in this process (``"not configured"`` if
    it was not called)."""
    return _state or "not configured"
