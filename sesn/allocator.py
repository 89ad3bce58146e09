"""The CPU memory allocator's configuration, which changes SESN's speed on CPU.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves every request
above its mmap threshold (dynamic, at most 32 MiB) with a fresh ``mmap``: each call then
page-faults and zeroes its buffer again. A scale-equivariant layer's outputs are S times a
CNN's (``[B, C, S, H, W]``), so at batch 128 they cross that threshold where the CNN's
do not: on a 2-core EPYC, writing a [128, 32, 28, 28] product took 9.1 ms into a fresh
buffer and 1.8 ms into an existing one, and mnist_ses_scalar_28's training step took 478 ms
against 338 ms configured (docs/speed.md).
The threshold also moves with what the process did before, so a benchmark row depended on
the rows before it.

:func:`configure_cpu_allocator` switches glibc to serving everything from its heap
(``M_MMAP_MAX = 0``) and keeps freed memory for reuse (``M_TRIM_THRESHOLD`` = 2 GiB):
fast and independent of history, at the cost that the process keeps its peak heap. The
``sesn`` commands and the benchmarks call it at start; library users can call it, set the
same options through the environment (``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...``),
or preload jemalloc/tcmalloc, as PyTorch's CPU performance guide suggests.
``SESN_ALLOCATOR=system`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

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


def configure_cpu_allocator() -> str:
    """Apply the configuration once per process; return a description of the allocator in
    use (recorded with benchmark results). Never raises: where the options do not apply
    (not glibc, a preloaded allocator, ``SESN_ALLOCATOR=system``) it says so and changes
    nothing."""
    global _state
    if _state is not None:
        return _state
    preload = os.environ.get("LD_PRELOAD", "")
    found = _glibc()
    if os.environ.get("SESN_ALLOCATOR", "").lower() == "system":
        _state = "system default (SESN_ALLOCATOR=system)"
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


def allocator_state() -> str:
    """What :func:`configure_cpu_allocator` did in this process (``"not configured"`` if
    it was not called)."""
    return _state or "not configured"
