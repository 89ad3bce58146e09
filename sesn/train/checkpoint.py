"""Atomic checkpoints and records (write to a temporary file in the same folder, fsync,
then rename, so a run killed at any point leaves either the old or the new file), the
resume check and the one-process-per-run lock."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import numpy as np
import torch

from sesn.io import atomic_write_bytes, atomic_write_text, exclusive_lock
from sesn.train.record import SETTINGS


def atomic_torch_save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_json(obj, path: Path) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class SettingsMismatch(ValueError):
    """A checkpoint was made with other settings than the run asked for now."""


def check_resume(saved: dict | None, now: dict, folder: Path, keys=SETTINGS) -> None:
    """Refuse to resume a checkpoint whose settings differ: on ``keys`` (default the training
    settings, so the code version is not compared: the caller prints it), or on every key of
    either dict when ``keys`` is None (the generalization benchmark's settings)."""
    if keys is None:
        keys = sorted(set(saved or {}) | set(now))
    if saved is None:
        raise SettingsMismatch(
            f"{folder}: the checkpoint records no settings (made by an older version); "
            "pass --restart to train from scratch"
        )
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in keys if saved.get(k) != now.get(k)]
    if diff:
        raise SettingsMismatch(
            f"{folder}: cannot resume, the checkpoint was made with other settings ({'; '.join(diff)}); "
            "pass --restart to discard it and train from scratch, or use another --output-dir"
        )


class RunInProgress(RuntimeError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """One process per run folder: an exclusive lock (:func:`sesn.io.exclusive_lock`) on
    ``run.lock``, held while the run trains; released by the OS if the holder dies, so a
    stale lock never blocks a restart. The file names the holder (pid and host)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "run.lock"
        self._lock = None

    def __enter__(self):
        import socket

        lock = exclusive_lock(self.path, wait=False)
        try:
            f = lock.__enter__()
        except BlockingIOError:
            holder = self.path.read_text().strip() or "another process"
            raise RunInProgress(f"{self.path.parent}: run is in progress in {holder}") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}")
        f.flush()
        self._lock = lock
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None
