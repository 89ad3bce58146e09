"""Pooling over scale channels, with scale-channel dropout.

A scale-channel network computes the same features at several scales (Gaussian-derivative
networks: the layers' sigma times a multiplier; foveated networks: the image rescaled) and
pools over the channels after the global spatial max: ``max`` (scale-invariant selection of
the best-matching scale) or ``avg``. Scale-channel dropout (Perzanowski & Lindeberg 2025)
drops each channel with probability ``dropout`` in training, per sample, before the pool
(at least one channel is always kept), so that no single scale carries the decision.
"""

from __future__ import annotations

import torch
from torch import nn


class ScaleChannelPool(nn.Module):
    """``[B, C, S]`` -> ``[B, C]``: max or mean over the S scale channels (with dropout in
    training)."""

    MODES = ("max", "avg")

    def __init__(self, mode: str = "max", dropout: float = 0.0):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"ScaleChannelPool: mode must be one of {self.MODES}, got {mode!r}")
        if not 0 <= dropout < 1:
            raise ValueError(f"ScaleChannelPool: dropout must be in [0, 1), got {dropout}")
        self.mode, self.dropout = mode, dropout

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        if v.dim() != 3:
            raise ValueError(f"ScaleChannelPool: expected [B, C, S], got {list(v.shape)}")
        if self.training and self.dropout > 0:
            b, _, s = v.shape
            keep = torch.rand(b, s, device=v.device) >= self.dropout
            none = ~keep.any(1)
            # keep one channel, drawn at random, where all were dropped (in place: on "meta",
            # where the memory model runs without values, there is nothing to draw and no size changes)
            if not v.is_meta and none.any():
                keep[none, torch.randint(s, (int(none.sum()),), device=v.device)] = True
            keep = keep[:, None, :]
            if self.mode == "max":
                return v.masked_fill(~keep, float("-inf")).amax(2)
            return (v * keep).sum(2) / keep.sum(2)
        return v.amax(2) if self.mode == "max" else v.mean(2)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, dropout={self.dropout}"
