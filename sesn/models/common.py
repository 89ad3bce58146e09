"""Pieces shared by the model families."""

from __future__ import annotations

import math

import torch
from torch import nn

from sesn.nn import SESConv_H_H, SESConv_H_H_1x1, SESConv_Z2_H


class InputCheck(nn.Module):
    """First module of every model: a clear error for wrong rank, channels or size."""

    def __init__(self, channels: int, size: tuple[int, int] | None, model: str):
        super().__init__()
        self.channels, self.size, self.model = channels, size, model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"{self.model}: expected input [B, C, H, W] (rank 4), got shape {list(x.shape)}")
        if x.shape[1] != self.channels:
            raise ValueError(
                f"{self.model}: expected {self.channels} input channel(s), got {x.shape[1]} (shape {list(x.shape)})"
            )
        if self.size is not None and tuple(x.shape[-2:]) != tuple(self.size):
            raise ValueError(
                f"{self.model}: expected {self.size[0]}x{self.size[1]} inputs, "
                f"got {x.shape[-2]}x{x.shape[-1]} (shape {list(x.shape)})"
            )
        return x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}"


def wrn_init_(model: nn.Module) -> None:
    """WRN initialisation: conv-like weights ~ N(0, 2/n), n = weight elements / in_channels;
    BatchNorm weight 1, bias 0; Linear bias 0 (docs/models.md)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, SESConv_Z2_H, SESConv_H_H, SESConv_H_H_1x1)):
            n = m.weight.numel() // m.weight.shape[1]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


def memory_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of ``model`` that take a memory-saving level, in forward order."""
    return [m for m in model.modules() if hasattr(type(m), "memory_saving")]


def set_memory_saving(model: nn.Module, level: str) -> nn.Module:
    """Set the activation-memory level (:mod:`sesn.nn.recompute`: ``"off"``, ``"layers"``,
    ``"blocks"``, or ``"blocks:K"``: the first K blocks recomputed, the others at
    ``"layers"``) of the blocks of ``model`` that support it; a level other than "off" on a
    model without such blocks is an error."""
    from sesn.nn.recompute import parse_level

    kind, count = parse_level(level)
    blocks = memory_blocks(model)
    if not blocks and level != "off":
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{name}: memory_saving={level!r} is not supported (the model has no recomputable blocks)")
    if count is not None and count > len(blocks):
        raise ValueError(f"memory_saving={level!r}: the model has {len(blocks)} blocks")
    for i, m in enumerate(blocks):
        m.memory_saving = kind if count is None or i < count else "layers"
    return model


def memory_saving_of(model: nn.Module) -> str:
    """The level :func:`set_memory_saving` would need to give ``model`` its blocks' levels
    (``"mixed"`` for a combination it cannot express)."""
    levels = [m.memory_saving for m in memory_blocks(model)]
    if not levels or len(set(levels)) == 1:
        return levels[0] if levels else "off"
    k = levels.index("layers") if "layers" in levels else len(levels)
    if all(lv == "blocks" for lv in levels[:k]) and all(lv == "layers" for lv in levels[k:]):
        return f"blocks:{k}"
    return "mixed"


def set_compute_mode(model: nn.Module, mode: str) -> dict[str, int]:
    """Set ``mode`` on every steerable layer of ``model`` that supports it, ``"direct"`` on
    the others (FFT at stride 2, separable for bases other than A/B); returns how many
    layers took each mode."""
    from sesn.nn.steerable import COMPUTE_MODES, SteerableConvBase

    if mode not in COMPUTE_MODES:
        raise ValueError(f"compute_mode must be one of {COMPUTE_MODES}, got {mode!r}")
    taken: dict[str, int] = {}
    for m in model.modules():
        if isinstance(m, SteerableConvBase):
            m.compute_mode = mode if m.supports_mode(mode) else "direct"
            taken[m.compute_mode] = taken.get(m.compute_mode, 0) + 1
    return taken


def set_memory_rule(model: nn.Module, factor: float | None = None, allowance: int | None = None) -> nn.Module:
    """Set ``memory_factor`` and/or ``memory_allowance`` (auto's memory rule,
    :mod:`sesn.nn.dispatch`) on every steerable layer of ``model``."""
    from sesn.nn.steerable import SteerableConvBase

    if factor is not None and not factor >= 1.0:
        raise ValueError(f"memory_factor must be >= 1 (inf: time alone), got {factor!r}")
    if allowance is not None and not allowance >= 0:
        raise ValueError(f"memory_allowance must be >= 0 bytes, got {allowance!r}")
    for m in model.modules():
        if isinstance(m, SteerableConvBase):
            if factor is not None:
                m.memory_factor = float(factor)
            if allowance is not None:
                m.memory_allowance = allowance
    return model
