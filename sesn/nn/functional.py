"""Functional building blocks of the steerable layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _window_geometry(full_size: int, m: int, padding: int) -> tuple[int, int]:
    """(crop, pad) of an m x m window centred in a k x k kernel: conv2d with the window and
    this padding, on the input cropped by ``crop`` per side, gives the zero-padded kernel's
    output without its multiplications by zeros. The window's offset (k - m) / 2 is taken off
    the padding; where that makes it negative, the input is cropped instead."""
    pad = padding - (full_size - m) // 2
    return (-pad, 0) if pad < 0 else (0, pad)


def _crop(x: torch.Tensor, c: int) -> torch.Tensor:
    return x[..., c : x.shape[-2] - c, c : x.shape[-1] - c] if c else x


def _scale_input(x: torch.Tensor, i: int, taps: int | None) -> tuple[torch.Tensor, int]:
    """Scale i's conv input and the number of taps it holds: the image for T->H
    (``taps=None``); for H->H the slices i .. i+taps-1 that exist (the zero slices past the
    largest scale are left out, with their kernel channels), folded tap-major into channels."""
    if taps is None:
        return x, 1
    n = min(taps, x.shape[2] - i)
    if n == 1:
        return x[:, :, i], 1
    b, c, _, h, w = x.shape
    return x[:, :, i : i + n].transpose(1, 2).reshape(b, n * c, h, w), n


class _ScaleWiseConv(torch.autograd.Function):
    """``y[:, :, i] = conv2d(input_i, kernels[i])`` for every scale i (the direct path).

    Written as one autograd function for its memory: autograd of the per-scale slicing and
    ``stack`` kept a zero-filled full-size gradient per scale (``slice_backward``) and added
    them up, S full-size tensors at once in the backward of an H -> H layer. Here the
    outputs are written into one ``[B, O, S, H', W']`` tensor, only the input and the
    kernels are saved, and the input gradient of every scale is added into one buffer.
    Not twice differentiable."""

    @staticmethod
    def forward(ctx, x, taps, full_size, stride, padding, *kernels):
        ctx.geometry = (taps, full_size, stride, padding)
        ctx.save_for_backward(x, *kernels)
        outs = None  # under torch.autocast, conv2d computes in the autocast dtype: so does backward
        for i, kern in enumerate(kernels):
            inp, n = _scale_input(x, i, taps)
            crop, pad = _window_geometry(full_size, kern.shape[-1], padding)
            k = kern[:, : inp.shape[1]] if kern.shape[1] != inp.shape[1] else kern
            y = F.conv2d(_crop(inp, crop), k, stride=stride, padding=pad)
            if outs is None:
                outs = y.new_empty(y.shape[0], y.shape[1], len(kernels), y.shape[2], y.shape[3])
            outs[:, :, i] = y
        ctx.compute_dtype = outs.dtype
        return outs

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, *kernels = ctx.saved_tensors
        taps, full_size, stride, padding = ctx.geometry
        need_x, need_k = ctx.needs_input_grad[0], any(ctx.needs_input_grad[5:])
        gx = torch.zeros_like(x) if need_x else None
        gks = []
        for i, kern in enumerate(kernels):
            inp, n = _scale_input(x, i, taps)
            crop, pad = _window_geometry(full_size, kern.shape[-1], padding)
            k = kern[:, : inp.shape[1]] if kern.shape[1] != inp.shape[1] else kern
            cd = ctx.compute_dtype
            gi, gk, _ = torch.ops.aten.convolution_backward(
                grad[:, :, i].to(cd), _crop(inp, crop).to(cd), k.to(cd), None, [stride] * 2, [pad] * 2, [1, 1],
                False, [0, 0], 1, [need_x, need_k, False],
            )  # fmt: skip
            gk = gk.to(kern.dtype) if gk is not None else None
            if need_x:
                if taps is None:
                    _crop(gx, crop).add_(gi)
                else:
                    gi = gi.view(gi.shape[0], n, x.shape[1], gi.shape[-2], gi.shape[-1]).transpose(1, 2)
                    _crop(gx[:, :, i : i + n], crop).add_(gi)
            if need_k and k is not kern:
                gk = torch.cat([gk, gk.new_zeros(kern.shape[0], kern.shape[1] - k.shape[1], *kern.shape[2:])], 1)
            gks.append(gk if ctx.needs_input_grad[5 + i] else None)
        return (gx, None, None, None, None, *gks)


def scalewise_conv(
    x: torch.Tensor, kernels, full_size: int, stride: int, padding: int, taps: int | None = None
) -> torch.Tensor:
    """The direct path of the steerable convolutions: scale i convolved with ``kernels[i]``
    (an odd window centred in a ``full_size`` kernel, without the zeros: see
    :func:`_window_geometry`). T -> H: ``x`` ``[B, C, H, W]``, ``taps=None``, kernels
    ``[O, C, m_i, m_i]``. H -> H: ``x`` ``[B, C, S, H, W]``, kernels ``[O, taps * C, m_i, m_i]``
    (tap-major), tap j of scale i reading input scale i + j (zero past the largest).
    Returns ``[B, O, S, H', W']``."""
    return _ScaleWiseConv.apply(x, taps, full_size, stride, padding, *kernels)


class _ScaleMax(torch.autograd.Function):
    """Max over axis 2 of ``[B, C, S, H, W]``, values only.

    ``Tensor.max(dim=2)`` also computes int64 indices, and its CPU kernel reduces a middle
    axis slowly; ``amax`` is slow on the FFT path's batch-innermost outputs (both measured in
    docs/speed.md, "The scale max projection"). Forward: a running
    elementwise ``maximum`` over the S slices and, when a gradient is
    needed, the index of the first maximal scale of each position as uint8 (what
    ``max(dim=2)`` picks, ties included). Backward: the gradient goes to that scale. Only
    the index is saved, not the output, so the output may be modified in place afterwards
    (``ReLU(inplace=True)``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        s = x.shape[2]
        ctx.layout = (x.shape, x.stride())  # the gradient gets x's layout
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
        shape, stride = ctx.layout
        out = torch.empty_strided(shape, stride, dtype=grad.dtype, device=grad.device)
        hit = torch.empty_like(index, dtype=torch.bool)
        for i in range(shape[2]):
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
