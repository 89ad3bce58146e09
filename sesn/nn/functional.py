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


class _ScaleMax(torch.autograd.Function):
    """Max over axis 2 of ``[B, C, S, H, W]``, values only.

    ``Tensor.max(dim=2)`` also computes int64 indices, and its CPU kernel reduces a middle
    axis slowly (23 ms for [128, 32, 4, 28, 28] on a 2-core EPYC); ``amax`` is slow on the
    FFT path's batch-innermost outputs (12 ms at [128, 63, 4, 14, 14]). Forward: a running
    elementwise ``maximum`` over the S slices (1.7 and 0.4 ms) and, when a gradient is
    needed, the index of the first maximal scale of each position as uint8 (what
    ``max(dim=2)`` picks, ties included). Backward: the gradient goes to that scale. Only
    the index is saved, not the output, so the output may be modified in place afterwards
    (``ReLU(inplace=True)``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[2]
        ctx.layout = torch.empty_like(x, device="meta")  # x's shape and strides, no storage
        y = torch.maximum(x[:, :, 0], x[:, :, 1])
        index_dtype = torch.uint8 if s <= 255 else torch.int64
        index = torch.gt(x[:, :, 1], x[:, :, 0]).to(index_dtype)
        above = torch.empty_like(y, dtype=torch.bool)
        for i in range(2, s):
            # a strictly greater value moves the index on: ties keep the first maximal scale
            torch.gt(x[:, :, i], y, out=above)
            torch.maximum(index, above.to(index_dtype) * i, out=index)
            torch.maximum(y, x[:, :, i], out=y)
        ctx.save_for_backward(index)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (index,) = ctx.saved_tensors
        layout = ctx.layout
        out = torch.empty_strided(layout.shape, layout.stride(), dtype=grad.dtype, device=grad.device)
        hit = torch.empty_like(index, dtype=torch.bool)
        for i in range(layout.shape[2]):
            torch.eq(index, i, out=hit)
            torch.mul(grad, hit, out=out[:, :, i])
        return out


def _running_max(x: torch.Tensor) -> torch.Tensor:
    if x.shape[2] == 1:
        return x[:, :, 0].clone()  # a new tensor: an in-place op on it never reaches x
    y = torch.maximum(x[:, :, 0], x[:, :, 1])
    for i in range(2, x.shape[2]):
        torch.maximum(y, x[:, :, i], out=y)
    return y


def scale_max(x: torch.Tensor) -> torch.Tensor:
    """``x.max(dim=2).values`` for ``[B, C, S, H, W]``: same values and gradients, faster."""
    if torch.is_grad_enabled() and x.requires_grad and x.shape[2] > 1:
        return _ScaleMax.apply(x)
    return _running_max(x)  # one scale: a clone, which autograd differentiates itself
