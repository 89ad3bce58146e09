"""The configuration of one training run (:class:`TrainConfig`) and the protocols' defaults.

``sesn train``'s command line fills a ``TrainConfig``; Python callers (``sesn reproduce``)
build one directly. Fields left ``None`` take the dataset's defaults in :meth:`resolved`,
which also checks the values.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

DEFAULTS = {
    "mnist-scale": dict(
        optimizer="adam",
        lr=0.01,
        epochs=60,
        lr_steps=[20, 40],
        lr_gamma=0.1,
        batch_size=128,
        weight_decay=0.0,
        select="best-val",
    ),
    "stl10": dict(
        optimizer="sgd",
        lr=0.1,
        epochs=1000,
        lr_steps=[300, 400, 600, 800],
        lr_gamma=0.2,
        batch_size=128,
        weight_decay=5e-4,
        select="last",
    ),
}
PROTOCOL_FIELDS = ("optimizer", "lr", "epochs", "lr_steps", "lr_gamma", "batch_size", "weight_decay")


def _default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclasses.dataclass
class TrainConfig:
    """Everything ``sesn train`` takes (see ``sesn train --help`` for each field)."""

    model: str
    data: Path
    dataset: str = "mnist-scale"
    output_dir: Path | None = None
    augment: bool = False
    epochs: int | None = None
    lr: float | None = None
    lr_steps: list[int] | None = None
    lr_gamma: float | None = None
    batch_size: int | None = None
    optimizer: str | None = None
    weight_decay: float | None = None
    seed: int = 0
    deterministic: bool = False
    device: str = dataclasses.field(default_factory=_default_device)
    amp: bool = False
    channels_last: bool = False
    workers: int = 0
    test_only: bool = False
    weights: Path | None = None
    stl10_verify: str = "md5"
    meta: dict = dataclasses.field(default_factory=dict)  # extra fields for the record (sweeps)
    quiet: bool = False
    debug: bool = False
    restart: bool = False
    select: str | None = None  # "best-val" or "last": set from the dataset's protocol
    # memory (docs/memory.md): none of these changes the result, so none is in the settings id
    memory_saving: str = "off"
    fit_memory: str | None = None  # e.g. "12GB": the cheapest memory_saving level that fits
    memory_factor: float | None = None  # auto's memory rule (default: the layers' 1.25)
    memory_allowance: str | None = None  # e.g. "512MiB" (default: the layers')
    show_dispatch: bool = False

    @classmethod
    def from_namespace(cls, ns) -> "TrainConfig":
        """From ``sesn train``'s parsed arguments (unknown attributes are an error)."""
        return cls(**vars(ns))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolved(self) -> "TrainConfig":
        """A copy with the dataset's defaults filled in, checked against the registry."""
        from sesn.models import get_model_info

        if self.dataset not in DEFAULTS:
            raise ValueError(f"dataset must be one of {sorted(DEFAULTS)}, got {self.dataset!r}")
        d = DEFAULTS[self.dataset]
        cfg = dataclasses.replace(
            self, **{k: d[k] for k in PROTOCOL_FIELDS if getattr(self, k) is None}, select=d["select"]
        )
        cfg.data = Path(cfg.data)
        cfg.lr_steps = list(cfg.lr_steps)
        for key in ("epochs", "batch_size"):
            value = getattr(cfg, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {value!r}")
        if not cfg.lr > 0:
            raise ValueError(f"--lr must be positive, got {cfg.lr!r}")
        if any(s < 1 for s in cfg.lr_steps):
            raise ValueError(f"--lr-steps must be epochs >= 1, got {cfg.lr_steps}")
        info = get_model_info(cfg.model)  # raises ValueError with close names
        if info.dataset != cfg.dataset:
            raise ValueError(f"model {cfg.model!r} is for {info.dataset}, not {cfg.dataset}")
        if cfg.amp and not str(cfg.device).startswith("cuda"):
            raise ValueError("--amp needs a CUDA device")
        from sesn.nn.recompute import check_level

        check_level(cfg.memory_saving)
        if cfg.fit_memory is not None and cfg.memory_saving != "off":
            raise ValueError("--fit-memory chooses --memory-saving itself; give one of them")
        if cfg.memory_factor is not None and not cfg.memory_factor >= 1:
            raise ValueError(f"--memory-factor must be >= 1 (inf: time alone), got {cfg.memory_factor}")
        from sesn.memory import parse_bytes

        for key in ("fit_memory", "memory_allowance"):
            if getattr(cfg, key) is not None:
                parse_bytes(getattr(cfg, key))  # a clear error for a bad size now, not after data loading
        return cfg
