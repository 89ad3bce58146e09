"""Resize helpers shared by the baselines."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pad_or_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centred zero pad / crop of the last two axes to ``size`` x ``size``:
    left = floor((size - n) / 2) (Python floor division), right = size - n - left, so padding
    puts the extra pixel right/bottom and cropping removes the extra pixel left/top."""
    n = x.shape[-1]
    left = (size - n) // 2
    right = size - n - left
    h = x.shape[-2]
    top = (size - h) // 2
    bottom = size - h - top
    return F.pad(x, (left, right, top, bottom))


def rescale_bilinear(x: torch.Tensor, s: float) -> torch.Tensor:
    """``F.interpolate(scale_factor=s)``, bilinear with align_corners=True (identity at s = 1)."""
    if s == 1:
        return x
    return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=True)
