"""Separable evaluation of the Hermite bases "A" and "B" (compute mode ``"separable"``).

Every basis function is ``scale[b] * outer(f_{g,p_h}, f_{g,p_w})`` at every scale
(:func:`sesn.basis.hermite.separable_factors`, g = sub-scale, p = order), so the response of
an input plane to all N_b functions at scale i takes two 1-D depthwise passes over the
scale's window m_i, and the output is one channel-mixing GEMM (a 1 x 1 convolution):

1. along the height: each input channel with the G * P 1-D functions -> G * P planes;
2. along the width: each of those planes with the P width functions of its group ->
   G * P * P planes, of which the N_b (g, p_h, p_w) pairs of the basis are kept;
3. ``y[:, o, i] = sum_{c, b} (w[o, c, b] * scale[b]) * resp[:, (c, b), i]`` -- the weights
   are the same at every scale, the basis responses differ.

Multiply-adds per output position and input channel at scale i: ``G P m_i + G P^2 m_i`` in
the passes plus ``N_b * C_out`` in the GEMM, instead of ``m_i^2 * C_out`` for the direct
path: with WRN-16-8's basis A (3 x 3 functions, windows 3, 5, 7) and 128 channels, 2.9 x
fewer than direct over the three scales, and about the plain 3 x 3 convolution's per scale.

The responses are N_b times the input's size, so they are never kept: the batch is
processed in chunks whose responses stay under :data:`CHUNK_BYTES`, and under autograd one
function (:class:`_SeparableConv`) keeps only the input and the weights and recomputes the
responses chunk by chunk in backward. Strides and padding are those of the direct path (the
window's offset is taken off the padding, or the input cropped).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sesn.basis.registry import basis_kind
from sesn.nn.fft_conv import autocast_off
from sesn.nn.functional import _crop, _scale_input, _window_geometry

# the basis responses of one batch chunk stay below this many bytes
CHUNK_BYTES = 64 * 2**20


def supports(spec) -> bool:
    return basis_kind(spec.basis_type).separable is not None


class SeparableTables:
    """The 1-D depthwise kernels of one spec (per scale), the pair selection and the
    normalisation, in one dtype on one device."""

    def __init__(self, spec, dtype, device):
        factors, pairs, scale = basis_kind(spec.basis_type).separable(spec)  # [S, G, P, k]
        s, g, p, k = factors.shape
        self.groups, self.orders, self.num_funcs = g, p, len(pairs)
        self.vertical, self.horizontal = [], []
        for i, m in enumerate(spec.windows):
            a = (k - m) // 2
            f = torch.tensor(factors[i, :, :, a : a + m], dtype=torch.float64)  # [G, P, m]
            self.vertical.append(f.reshape(g * p, 1, m, 1).to(dtype=dtype, device=device))
            # plane (g, p_h) is filtered along the width by the P functions of its group g
            horizontal = f.unsqueeze(1).expand(g, p, p, m).reshape(g * p * p, 1, 1, m)
            self.horizontal.append(horizontal.to(dtype=dtype, device=device))
        # function b is plane (g, p_h, p_w) of the G * P * P responses of an input channel;
        # planes that are no basis function get a zero column in the mixing matrix
        slots = (pairs[:, 0] * p + pairs[:, 1]) * p + pairs[:, 2]
        self.in_order = bool(np.array_equal(slots, np.arange(g * p * p)))
        self.slots = torch.as_tensor(slots, device=device)
        self.scale = torch.tensor(scale, dtype=dtype, device=device)

    @property
    def planes(self) -> int:
        """Response planes per input channel before the selection of the basis pairs."""
        return self.groups * self.orders**2


def _responses(inp: torch.Tensor, t: SeparableTables, i: int, crop: int, pad: int, stride: int) -> torch.Tensor:
    """``inp`` ``[n, C', H, W]`` -> all G * P * P response planes at scale i,
    ``[n, C' * G * P * P, H', W']`` (channel ``(c * G + g) * P * P + p_h * P + p_w``)."""
    c = inp.shape[1]
    v = F.conv2d(_crop(inp, crop), t.vertical[i].repeat(c, 1, 1, 1), stride=(stride, 1), padding=(pad, 0), groups=c)
    gp = t.groups * t.orders
    return F.conv2d(v, t.horizontal[i].repeat(c, 1, 1, 1), stride=(1, stride), padding=(0, pad), groups=c * gp)


def _responses_backward(g: torch.Tensor, shape, t: SeparableTables, i: int, crop: int, pad: int, stride: int):
    """Gradient w.r.t. the cropped input (of size ``shape`` before cropping) of
    :func:`_responses`, given the gradient ``g`` of its output."""
    n, c, h, w = shape
    gp = t.groups * t.orders
    hc, wc = h - 2 * crop, w - 2 * crop
    m = t.vertical[i].shape[-2]
    v_shape = (n, c * gp, (hc + 2 * pad - m) // stride + 1, wc)
    gv = torch.nn.grad.conv2d_input(
        v_shape, t.horizontal[i].repeat(c, 1, 1, 1), g, stride=(1, stride), padding=(0, pad), groups=c * gp
    )
    return torch.nn.grad.conv2d_input(
        (n, c, hc, wc), t.vertical[i].repeat(c, 1, 1, 1), gv, stride=(stride, 1), padding=(pad, 0), groups=c
    )


def _chunk(batch: int, channels: int, t: SeparableTables, h: int, w: int, itemsize: int) -> int:
    """Batch items per chunk: their response planes stay under :data:`CHUNK_BYTES`."""
    per_item = channels * t.planes * h * w * itemsize
    return max(1, min(batch, CHUNK_BYTES // max(per_item, 1)))


def _mixing(weight: torch.Tensor, n: int, t: SeparableTables) -> torch.Tensor:
    """``[O, C_in, K, N_b]`` -> the mixing matrix of the first ``n`` taps over all response
    planes, ``[O, n * C_in * G * P * P]`` (column ``(j * C_in + c) * G P P + slot``, the
    tap-major order of :func:`_scale_input`; zero for planes that are no basis function).
    A batched matmul rather than a 1 x 1 ``conv2d``: oneDNN's 1 x 1 convolution on these NCHW
    responses ran several times slower than the matmul (docs/speed.md)."""
    o, c_in, _, nb = weight.shape
    w = weight[:, :, :n].transpose(1, 2)  # [O, n, C_in, N_b]
    if t.in_order:
        return w.reshape(o, -1)
    full = w.new_zeros(o, n, c_in, t.planes)
    full[..., t.slots] = w
    return full.reshape(o, -1)


def _scales(t: SeparableTables, x, taps, full_size, stride, padding):
    """Per scale: (index, input planes, taps they hold, crop, pad, output size, batch chunk)."""
    for i, vert in enumerate(t.vertical):
        m = vert.shape[-2]
        crop, pad = _window_geometry(full_size, m, padding)
        inp, n = _scale_input(x, i, taps)
        h = (inp.shape[-2] - 2 * crop + 2 * pad - m) // stride + 1
        w = (inp.shape[-1] - 2 * crop + 2 * pad - m) // stride + 1
        yield i, inp, n, crop, pad, (h, w), _chunk(x.shape[0], inp.shape[1], t, h, w, x.element_size())


def _separable_forward(x, weight, t, taps, full_size, stride, padding):
    out = None
    for i, inp, n, crop, pad, (h, w), step in _scales(t, x, taps, full_size, stride, padding):
        mix = _mixing(weight, n, t)
        if out is None:
            out = x.new_empty(x.shape[0], weight.shape[0], len(t.vertical), h, w)
        for s0 in range(0, x.shape[0], step):
            r = _responses(inp[s0 : s0 + step], t, i, crop, pad, stride)
            y = torch.matmul(mix, r.view(r.shape[0], r.shape[1], h * w))  # [n, O, H' W']
            out[s0 : s0 + step, :, i] = y.view(r.shape[0], -1, h, w)
    return out


class _SeparableConv(torch.autograd.Function):
    """The separable path, keeping only the input and the (folded) weights for backward:
    the responses are recomputed chunk by chunk. Not twice differentiable."""

    @staticmethod
    def forward(ctx, x, weight, t, taps, full_size, stride, padding):
        ctx.args = (t, taps, full_size, stride, padding)
        ctx.save_for_backward(x, weight)
        return _separable_forward(x, weight, t, taps, full_size, stride, padding)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        t, taps, full_size, stride, padding = ctx.args
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        gx = torch.zeros_like(x) if need_x else None
        gw = torch.zeros_like(weight) if need_w else None
        o, c_in, _, nb = weight.shape
        for i, inp, n, crop, pad, (h, w), step in _scales(t, x, taps, full_size, stride, padding):
            mix = _mixing(weight, n, t)
            for s0 in range(0, x.shape[0], step):
                part = inp[s0 : s0 + step]
                r = _responses(part, t, i, crop, pad, stride)
                r = r.view(r.shape[0], r.shape[1], h * w)
                g = grad[s0 : s0 + step, :, i].reshape(r.shape[0], o, h * w)
                if need_w:  # dW = sum over the chunk of dY R^T, on the planes that are basis functions
                    gm = torch.matmul(g, r.transpose(1, 2)).sum(0).view(o, n, c_in, t.planes)
                    gw[:, :, :n] += (gm if t.in_order else gm[..., t.slots]).transpose(1, 2)
                del r
                if need_x:
                    gr = torch.matmul(mix.T, g).view(g.shape[0], -1, h, w)
                    gi = _responses_backward(gr, part.shape, t, i, crop, pad, stride)
                    if taps is None:
                        _crop(gx[s0 : s0 + step], crop).add_(gi)
                    else:
                        gi = gi.view(gi.shape[0], n, c_in, gi.shape[-2], gi.shape[-1]).transpose(1, 2)
                        _crop(gx[s0 : s0 + step, :, i : i + n], crop).add_(gi)
        return gx, gw, None, None, None, None, None


def separable_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    t: SeparableTables,
    full_size: int,
    stride: int,
    padding: int,
    taps: int | None = None,
) -> torch.Tensor:
    """The separable path. T -> H: ``x`` ``[B, C, H, W]``, ``taps=None``, ``weight``
    ``[O, C, 1, N_b]``; H -> H: ``x`` ``[B, C, S, H, W]``, ``weight`` ``[O, C, taps, N_b]``
    (tap j of scale i reads input scale i + j, zero past the largest). ``weight`` already
    multiplied by ``t.scale``. Computed in the weights' dtype with autocast off (the layer
    casts the result). Returns ``[B, O, S, H', W']``."""

    with autocast_off(x):
        x = x.to(weight.dtype)
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
            return _SeparableConv.apply(x, weight, t, taps, full_size, stride, padding)
        return _separable_forward(x, weight, t, taps, full_size, stride, padding)


def separable_cost(batch, c_in, c_out, taps, spec, h, w, stride, padding) -> float:
    """Multiply-adds of the separable path: both depthwise passes and the GEMM, per scale."""
    if not supports(spec):
        return float("inf")
    factors, pairs, _ = basis_kind(spec.basis_type).separable(spec)
    _, g, p, k = factors.shape
    total = 0.0
    for m in spec.windows:
        crop, pad = _window_geometry(k, m, padding)
        hi, wi = h - 2 * crop, w - 2 * crop
        ho, wo = (hi + 2 * pad - m) // stride + 1, (wi + 2 * pad - m) // stride + 1
        planes = batch * c_in * taps
        total += planes * (g * p * m * ho * wi + g * p * p * m * ho * wo)
        total += batch * c_out * c_in * taps * len(pairs) * ho * wo
    return math.fsum([total])
