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
