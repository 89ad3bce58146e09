"""Functional building blocks of the steerable layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def windowed_conv2d(x: torch.Tensor, kernel: torch.Tensor, full_size: int, stride: int, padding: int, groups: int = 1):
    """conv2d with an m x m kernel centred in a zero k x k kernel, without the zeros.

    The offset of the window, (k - m) / 2, is taken off the padding; where that makes the
    padding negative the input is cropped instead. Same output as the zero-padded kernel.
    """
    m = kernel.shape[-1]
    pad = padding - (full_size - m) // 2
    if pad < 0:
        x = x[..., -pad : x.shape[-2] + pad, -pad : x.shape[-1] + pad]
        pad = 0
    return F.conv2d(x, kernel, stride=stride, padding=pad, groups=groups)
