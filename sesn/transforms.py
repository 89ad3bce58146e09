"""The group actions used to measure equivariance: spatial rescaling about the centre,
integer translation, scale-axis shift, and the joint rescale + scale shift on H features.

Rescaling protocol (``rescale``): separable Keys cubic interpolation with A = -0.5
(the bicubic kernel of PIL and of ``F.interpolate(..., antialias=True)``), **about the
canvas centre, on the same canvas** (output pixel p samples the input at
``c + (p - c) / factor``, c = (N - 1) / 2), zero outside the canvas. When downscaling
(factor < 1) the kernel is stretched by 1/factor (antialiasing, as PIL and torch's
``antialias=True`` do), otherwise the rescaled image aliases and the measured error is
dominated by the resampler rather than by the layer. ``F.interpolate`` itself is not used
because its ``scale_factor`` mode anchors at the top-left corner and rounds the output
size, so it cannot rescale by an arbitrary factor about the centre of a fixed canvas;
``tests/test_transforms.py`` checks that both agree where the geometry coincides.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

CUBIC_A = -0.5


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys cubic convolution kernel with A = CUBIC_A (support [-2, 2])."""
    a = CUBIC_A
    x = np.abs(x)
    out = np.zeros_like(x)
    m1 = x <= 1
    m2 = (x > 1) & (x < 2)
    out[m1] = ((a + 2) * x[m1] - (a + 3)) * x[m1] ** 2 + 1
    out[m2] = a * (((x[m2] - 5) * x[m2] + 8) * x[m2] - 4)
    return out


@functools.lru_cache(maxsize=512)
def _rescale_matrix_np(size: int, factor: float) -> np.ndarray:
    if factor <= 0 or not math.isfinite(factor):
        raise ValueError(f"rescale factor must be positive and finite, got {factor}")
    support = 2.0 / min(factor, 1.0)
    stretch = min(factor, 1.0)
    c = (size - 1) / 2.0
    mat = np.zeros((size, size))
    for p in range(size):
        x = c + (p - c) / factor
        lo, hi = math.floor(x - support), math.ceil(x + support)
        js = np.arange(lo, hi + 1)
        w = _cubic((js - x) * stretch)
        total = w.sum()  # normalise over the infinite grid; off-canvas pixels are zeros
        inside = (js >= 0) & (js < size)
        mat[p, js[inside]] = w[inside] / total
    mat.setflags(write=False)
    return mat


def rescale_matrix(size: int, factor: float, dtype=torch.float64, device=None) -> torch.Tensor:
    """The 1-D resampling operator ``[size, size]`` of :func:`rescale`."""
    return torch.tensor(np.array(_rescale_matrix_np(int(size), float(factor))), dtype=dtype, device=device)


def rescale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """L_a x(u) = x(u / a) about the centre of the last two axes, same canvas size.

    ``factor`` < 1 shrinks the content (antialiased). Works for any leading shape.
    """
    if factor == 1.0:
        return x
    h, w = x.shape[-2:]
    mh = rescale_matrix(h, factor, x.dtype, x.device)
    mw = mh if w == h else rescale_matrix(w, factor, x.dtype, x.device)
    return mh @ x @ mw.T


def rescale_corner(x: torch.Tensor, factor: float) -> torch.Tensor:
    """A second, independent rescale: ``F.interpolate(x, scale_factor=factor, mode="bicubic",
    antialias=True, align_corners=False)``, anchored at the top-left corner (output pixel p
    samples the input at ``(p + 1/2) / factor - 1/2``), written onto a zero canvas of the input's
    size (cropped to it when enlarging). Same kernel family as :func:`rescale` but another
    implementation, anchor and output-size rounding: a measurement that holds under both is
    not fitted to one operator."""
    if factor <= 0 or not math.isfinite(factor):
        raise ValueError(f"rescale factor must be positive and finite, got {factor}")
    if factor == 1.0:
        return x
    h, w = x.shape[-2:]
    flat = x.reshape(-1, 1, h, w)
    y = torch.nn.functional.interpolate(flat, scale_factor=factor, mode="bicubic", antialias=True, align_corners=False)
    out = torch.zeros_like(flat)
    mh, mw = min(h, y.shape[-2]), min(w, y.shape[-1])
    out[..., :mh, :mw] = y[..., :mh, :mw]
    return out.reshape(x.shape)


RESCALES = {"centre": rescale, "corner": rescale_corner}  # name -> operator (docs/equivariance.md)


def translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Integer shift of the last two axes by (dy, dx), zero fill (no wrap-around)."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    src_y = slice(max(0, -dy), min(h, h - dy))
    dst_y = slice(max(0, dy), min(h, h + dy))
    src_x = slice(max(0, -dx), min(w, w - dx))
    dst_x = slice(max(0, dx), min(w, w + dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def scale_shift(x: torch.Tensor, t: int) -> torch.Tensor:
    """Shift an H feature ``[B, C, S, H, W]`` along the scale axis: ``y[:, :, i] = x[:, :, i + t]``,
    zero where ``i + t`` falls outside ``[0, S)``."""
    if x.dim() != 5:
        raise ValueError(f"scale_shift expects [B, C, S, H, W], got shape {list(x.shape)}")
    out = torch.zeros_like(x)
    s = x.shape[2]
    if t >= 0:
        out[:, :, : s - t] = x[:, :, t:]
    else:
        out[:, :, -t:] = x[:, :, : s + t]
    return out


def rescale_and_scale_shift(x: torch.Tensor, scales, t: int, rescale_fn=None) -> torch.Tensor:
    """The joint action on H features that steerable layers approximate:
    ``y[:, :, i] = L_{a_i} x[:, :, i + t]`` with ``a_i = scales[i] / scales[i + t]``
    (t > 0 shrinks the content), zero for the slices shifted out; ``L`` is ``rescale_fn``
    (default: :func:`rescale`)."""
    if x.dim() != 5:
        raise ValueError(f"rescale_and_scale_shift expects [B, C, S, H, W], got shape {list(x.shape)}")
    s = x.shape[2]
    if len(scales) != s:
        raise ValueError(f"got {len(scales)} scales for a feature with S={s}")
    if not 0 <= t < s:
        raise ValueError(f"scale step t must be in [0, {s - 1}], got {t}")
    rescale_fn = rescale if rescale_fn is None else rescale_fn
    out = torch.zeros_like(x)
    for i in range(s - t):
        out[:, :, i] = rescale_fn(x[:, :, i + t], scales[i] / scales[i + t])
    return out


def smooth_random_field(
    shape, generator: torch.Generator, blur: float = 1.5, support: float = 0.5, dtype=torch.float64
) -> torch.Tensor:
    """Smooth random images on a zero canvas: white noise blurred by a Gaussian of std
    ``blur`` px, multiplied by a smooth radial window that is 1 inside a disk of radius
    ``support * N / 2`` and falls to 0 over a few pixels, so content stays clear of the
    border after convolution and downscaling. Shape ``[..., H, W]``."""
    noise = torch.randn(*shape, generator=generator, dtype=torch.float64)
    h, w = shape[-2:]
    radius = int(math.ceil(3 * blur))
    g = torch.exp(-(torch.arange(-radius, radius + 1, dtype=torch.float64) ** 2) / (2 * blur**2))
    g = g / g.sum()
    flat = noise.reshape(-1, 1, h, w)
    flat = torch.nn.functional.conv2d(flat, g.view(1, 1, 1, -1), padding=(0, radius))
    flat = torch.nn.functional.conv2d(flat, g.view(1, 1, -1, 1), padding=(radius, 0))
    yy = torch.arange(h, dtype=torch.float64) - (h - 1) / 2
    xx = torch.arange(w, dtype=torch.float64) - (w - 1) / 2
    r = torch.sqrt(yy[:, None] ** 2 + xx[None, :] ** 2)
    r0 = support * min(h, w) / 2
    width = max(2.0, 2 * blur)
    window = 0.5 * (1 - torch.tanh((r - r0) / (width / 2)))
    field = flat.reshape(shape) * window
    field = field / field.flatten(-2).std(dim=-1).clamp_min(1e-12)[..., None, None]
    return field.to(dtype)
