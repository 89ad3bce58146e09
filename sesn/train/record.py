"""What a run's record names: versions, the settings that determine its result, and
their hash (docs/protocols.md)."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

import sesn
from sesn import provenance
from sesn.train.config import TrainConfig


def versions() -> dict:
    """The software versions recorded with a run."""
    return provenance.versions("sesn", "torch", "torchvision", "numpy", "python", "cuda")


# What determines a run's result: the TrainConfig fields declared ``setting=True`` and three
# values known when the run starts. A checkpoint made with other values is not resumed, and
# the reproduction table only averages runs whose values agree (except the seed and data).
RUN_SETTINGS = ("data_sha256", "world_size", "device_type")  # the data's checksum, DDP processes, cpu/cuda
SETTINGS = TrainConfig.settings_fields() + RUN_SETTINGS


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Computed once per process, at its first call (commands call it when they start): a
    sweep running for hours records the code it runs, not a checkout edited meanwhile.

    The package version and, in a git checkout, the commit (``+dirty`` with local changes)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return sesn.__version__
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "sesn"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return f"{sesn.__version__}+g{commit.stdout.strip()}{'.dirty' if dirty.stdout.strip() else ''}"
    except (OSError, subprocess.SubprocessError):
        return sesn.__version__


def run_settings(args, checksum, world: int) -> dict:
    """Everything that determines the result of a run (SETTINGS) plus the code version."""
    values = {
        **(args.as_dict() if hasattr(args, "as_dict") else vars(args)),
        "data_sha256": checksum,
        "world_size": world,
        "device_type": torch.device(str(args.device)).type,
    }
    out = {k: values[k] for k in SETTINGS}
    out["lr_steps"] = sorted(s for s in out["lr_steps"] if s < out["epochs"])  # steps past the end do nothing
    return out


def settings_id(settings: dict, exclude=("code_version",)) -> str:
    """Short hash of the settings (sorted JSON), without the keys in ``exclude``."""
    import hashlib

    kept = {k: v for k, v in settings.items() if k not in exclude}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


def group_id(group: dict) -> str:
    """Short hash of a settings group (the settings runs share, sorted JSON): the id the
    reports' lines name, so that runs of other settings are never merged."""
    import hashlib

    return hashlib.sha256(json.dumps(group, sort_keys=True, default=str).encode()).hexdigest()[:8]
