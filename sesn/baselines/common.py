"""Resize helpers shared by the baselines."""

from __future__ import annotations

import functools

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


@functools.lru_cache(maxsize=256)
def _rescale_matrix(n: int, s: float, size: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """``[size, n]``: one axis of ``pad_or_crop(rescale_bilinear(., s), size)`` as a matrix
    (bilinear is separable; the rows are the 1-D linear interpolation weights, found by
    resizing the identity, then the centred pad / crop's rows)."""
    eye = torch.eye(n, dtype=torch.float64).view(n, 1, n)
    a = eye.view(n, n) if s == 1 else F.interpolate(eye, scale_factor=s, mode="linear", align_corners=True).view(n, -1)
    return _crop_rows(a.T, size).to(device=device, dtype=dtype)


def _crop_rows(a: torch.Tensor, size: int) -> torch.Tensor:
    """The centred pad / crop of :func:`pad_or_crop` applied to the rows of ``a`` (``[m, n]`` -> ``[size, n]``)."""
    m = a.shape[0]
    top = (size - m) // 2
    return F.pad(a, (0, 0, top, size - m - top))


def rescale_to(x: torch.Tensor, s: float, size: int) -> torch.Tensor:
    """``pad_or_crop(rescale_bilinear(x, s), size)`` of a square ``[..., n, n]`` as two matrix
    products ``M x M^T`` (``M``: :func:`_rescale_matrix`): the same values to float round-off,
    without the rescaled image of an upscaling and with a GEMM backward (the bilinear kernel's
    backward is a slow scatter on CPU)."""
    m = _rescale_matrix(x.shape[-1], float(s), size, x.dtype, str(x.device))
    return torch.matmul(torch.matmul(m, x), m.T)
