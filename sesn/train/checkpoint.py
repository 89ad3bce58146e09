"""Atomic checkpoints and records: write to a temporary file in the same folder, fsync,
then rename, so a run killed at any point leaves either the old or the new file."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np
import torch

from sesn.io import atomic_write_bytes, atomic_write_text


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
