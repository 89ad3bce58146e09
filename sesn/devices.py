"""The device a command runs on, checked before any work: a name this machine cannot use is an
:class:`~sesn.errors.InputError` naming it (one line and exit status 2 on the command line)."""

from __future__ import annotations

import torch

from sesn.errors import InputError


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str | None) -> str:
    """``name`` if this machine has that device (``cpu``, ``cuda``, ``cuda:N``), else an
    ``InputError``; None or empty: CUDA when present, else the CPU. A valid name is returned as
    given (records keep the user's spelling)."""
    if name is None or str(name) == "":
        return default_device()
    try:
        dev = torch.device(str(name))
    except (RuntimeError, ValueError):
        raise InputError(f"--device {name}: not a device name (cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: this machine has no CUDA device (use --device cpu)")
        n = torch.cuda.device_count()
        if dev.index is not None and dev.index >= n:
            raise InputError(f"--device {name}: this machine has {n} CUDA device(s), cuda:0..cuda:{n - 1}")
    elif dev.type != "cpu":
        raise InputError(f"--device {name}: device type {dev.type!r} is not supported here (cpu or cuda)")
    return str(name)
