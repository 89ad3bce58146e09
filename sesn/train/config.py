"""The configuration of one training run (:class:`TrainConfig`) and the protocols' defaults.

``sesn train``'s command line fills a ``TrainConfig``; Python callers (``sesn reproduce``)
build one directly. Fields left ``None`` take the dataset's defaults in :meth:`resolved`,
which also checks the values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path

import torch

from sesn.devices import resolve_device
from sesn.io import parse_bytes
from sesn.models import get_model_info
from sesn.nn.recompute import check_level

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


def option(default=None, *, help: str = "", setting: bool = False, cli: bool = True, factory=None, **argparse_kwargs):
    """A :class:`TrainConfig` field with everything the other views of it need: its
    ``sesn train`` option (``--name-with-dashes``; ``help``, and argparse's ``type``,
    ``choices``, ``nargs``, ``metavar``, ``required``; a bool is a flag; ``cli=False``: no
    option; ``help=argparse.SUPPRESS``: hidden), and whether it determines the run's result
    (``setting``: in the record's settings, the settings id and the resume check)."""
    meta = {"help": help, "setting": setting, "cli": cli, "argparse": argparse_kwargs}
    if argparse_kwargs.get("required"):  # no default: a required argument of the dataclass too
        return dataclasses.field(metadata=meta)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_HIDDEN = argparse.SUPPRESS
_MEMORY_SAVING_HELP = (
    "activation memory saving (same results): 'layers' recomputes batch-norm/ReLU outputs in backward instead of "
    "keeping them; 'blocks' keeps only each residual block's input and recomputes the block (one more forward of its "
    "convolutions); 'blocks:K' recomputes the first K blocks (the largest maps), 'layers' for the others. Models with "
    "pre-activation blocks (WRN-16-8 family)"
)


@dataclasses.dataclass
class TrainConfig:
    """Everything ``sesn train`` takes: one declaration per field, from which the command
    line (:func:`sesn.train.train.get_args_parser`) and the settings that determine a result
    (:data:`sesn.train.record.SETTINGS`) are derived."""

    model: str = option(required=True, help="registered model (see sesn.models.list_models())", setting=True)
    data: Path = option(type=Path, required=True, help="MNIST-scale realization folder, or the STL-10 data root")
    dataset: str = option("mnist-scale", choices=sorted(DEFAULTS), setting=True)
    output_dir: Path | None = option(type=Path, help="run folder (checkpoint, record); required unless --test-only")
    augment: bool = option(False, help='MNIST-scale "+" training augmentation (random rescale 0.5-2.0)', setting=True)
    epochs: int | None = option(type=int, setting=True)
    lr: float | None = option(type=float, setting=True)
    lr_steps: list[int] | None = option(type=int, nargs="*", help="epochs at which lr is multiplied by --lr-gamma",
                                        setting=True)  # fmt: skip
    lr_gamma: float | None = option(type=float, setting=True)
    batch_size: int | None = option(type=int, help="global batch size (split over DDP processes)", setting=True)
    optimizer: str | None = option(choices=["adam", "sgd"], setting=True)
    weight_decay: float | None = option(type=float, setting=True)
    seed: int = option(0, type=int, setting=True)
    deterministic: bool = option(False, help="torch.use_deterministic_algorithms(True)", setting=True)
    device: str = option(factory=_default_device)  # in the settings as its type (record.RUN_SETTINGS)
    amp: bool = option(False, help="mixed precision (CUDA only)", setting=True)
    channels_last: bool = option(False, help="channels_last memory format (CUDA)", setting=True)
    # not a setting: the compiled kernels give eager's results to float round-off (like auto's path
    # picks, named in the record rather than in the settings id)
    compile: bool = option(
        False,
        help="torch.compile the model (nn.Module.compile, inductor): the first epoch includes the compile time; "
        "pays for long runs of SESN models, not for small CNNs (docs/speed.md)",
    )
    workers: int = option(0, type=int, help="data loader workers", setting=True)
    test_only: bool = option(False, help="only evaluate --weights on the test set")
    weights: Path | None = option(type=Path, help="state_dict or checkpoint to evaluate with --test-only")
    stl10_verify: str = option("md5", choices=["md5", "layout"], help=_HIDDEN)
    meta: dict = option(factory=dict, type=json.loads, help=_HIDDEN)  # extra fields for the record (sweeps)
    quiet: bool = option(False, help="no progress bars")
    debug: bool = option(False, help="show the traceback of an error instead of one line")
    restart: bool = option(False, help="discard an existing checkpoint in --output-dir and train from scratch "
                           "(a checkpoint made with other settings is otherwise refused)")  # fmt: skip
    select: str | None = option(cli=False)  # "best-val" or "last": set from the dataset's protocol
    # memory (docs/memory.md): none of these changes the result, so none is a setting
    memory_saving: str = option("off", metavar="{off,layers,blocks,blocks:K}", help=_MEMORY_SAVING_HELP)
    fit_memory: str | None = option(
        metavar="SIZE",
        help="pick the cheapest --memory-saving level (off, layers, blocks:1, blocks:2, ...) whose training peak "
        "(measured on the meta device at this batch, before training) fits SIZE, e.g. 12GB or 11GiB; error if none "
        "does",
    )
    memory_factor: float | None = option(
        type=float,
        help="auto's memory rule: no compute path keeping more than this x the leanest path's activations "
        "(default 1.25; inf: fastest path regardless of memory)",
    )
    memory_allowance: str | None = option(
        metavar="SIZE",
        help="auto's memory rule: a path's peak may also exceed the leanest path's by this much (default 512MiB)",
    )
    show_dispatch: bool = option(False, help="print what auto picked per layer (time, memory, reason)")

    @classmethod
    def from_namespace(cls, ns) -> "TrainConfig":
        """From ``sesn train``'s parsed arguments (unknown attributes are an error)."""
        return cls(**vars(ns))

    @staticmethod
    def settings_fields() -> tuple[str, ...]:
        """The fields that determine a run's result (declaration order)."""
        return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("setting"))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def resolved(self) -> "TrainConfig":
        """A copy with the dataset's defaults filled in, checked against the registry."""

        resolve_device(self.device)  # a device this machine lacks: one line, before any work
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
        if not (cfg.lr > 0 and math.isfinite(cfg.lr)):
            raise ValueError(f"--lr must be a positive finite number, got {cfg.lr!r}")
        if any(s < 1 for s in cfg.lr_steps):
            raise ValueError(f"--lr-steps must be epochs >= 1, got {cfg.lr_steps}")
        info = get_model_info(cfg.model)  # raises ValueError with close names
        if info.dataset != cfg.dataset:
            raise ValueError(f"model {cfg.model!r} is for {info.dataset}, not {cfg.dataset}")
        if cfg.amp and not str(cfg.device).startswith("cuda"):
            raise ValueError("--amp needs a CUDA device")

        check_level(cfg.memory_saving)
        if cfg.fit_memory is not None and cfg.memory_saving != "off":
            raise ValueError("--fit-memory chooses --memory-saving itself; give one of them")
        if cfg.memory_factor is not None and not cfg.memory_factor >= 1:
            raise ValueError(f"--memory-factor must be >= 1 (inf: time alone), got {cfg.memory_factor}")

        for key in ("fit_memory", "memory_allowance"):
            if getattr(cfg, key) is not None:
                parse_bytes(getattr(cfg, key))  # a clear error for a bad size now, not after data loading
        return cfg
