"""FLOP counting: ``torch.utils.flop_counter.FlopCounterMode`` with corrected formulas.

Fixes over the stock counter (torch 2.13/2.14):

* ``convolution_backward``: the stock formula charges a grouped convolution's weight
  gradient as an ungrouped one, (groups + 1) x the forward in all; the true cost of
  grad_input and grad_weight is one forward each;
* complex ``mm``/``bmm`` (the FFT path's spectral products) cost 4 real multiplies and
  4 adds per complex multiply-add, 4 x what the shape-only formula charges;
* FFTs are not counted at all by the stock counter; here ``2.5 N log2 N`` real flops per
  real transform of N points (``5 N log2 N`` complex).

Flops count a multiply-add as 2, like the stock counter.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten


def conv_forward_flops(x_shape, w_shape, out_shape) -> int:
    """2 * B * C_out * (C_in / groups) * prod(kernel) * prod(output spatial)."""
    return 2 * x_shape[0] * w_shape[0] * w_shape[1] * math.prod(w_shape[2:]) * math.prod(out_shape[2:])


def _conv_backward(
    grad_out_shape,
    x_shape,
    w_shape,
    _bias,
    _stride,
    _padding,
    _dilation,
    transposed,
    _output_padding,
    groups,
    output_mask,
    out_shape=None,
    **kwargs,
) -> int:
    if transposed:
        forward = 2 * grad_out_shape[0] * w_shape[0] * w_shape[1] * math.prod(w_shape[2:]) * math.prod(x_shape[2:])
    else:
        forward = conv_forward_flops(x_shape, w_shape, grad_out_shape)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _matmul_raw(a, b, *args, out_val=None, **kwargs) -> int:
    flops = 2 * math.prod(out_val.shape) * a.shape[-1]
    return 4 * flops if a.is_complex() else flops


_matmul_raw._get_raw = True


def _addmm_raw(bias, a, b, *args, out_val=None, **kwargs) -> int:
    return _matmul_raw(a, b, out_val=out_val)


_addmm_raw._get_raw = True


def _fft_points(shape, dims) -> tuple[int, int]:
    n = math.prod(shape[d] for d in dims)
    return n, math.prod(shape) // max(n, 1)


def _fft_r2c(x_shape, dim, normalization, onesided, out_shape=None, **kwargs) -> int:
    n, batch = _fft_points(x_shape, dim)
    return int(2.5 * n * math.log2(max(n, 2)) * batch)


def _fft_c2r(x_shape, dim, normalization, last_dim_size, out_shape=None, **kwargs) -> int:
    n, batch = _fft_points(out_shape, dim)
    return int(2.5 * n * math.log2(max(n, 2)) * batch)


def _fft_c2c(x_shape, dim, normalization, forward, out_shape=None, **kwargs) -> int:
    n, batch = _fft_points(x_shape, dim)
    return int(5 * n * math.log2(max(n, 2)) * batch)


CUSTOM_FORMULAS = {
    aten.convolution_backward: _conv_backward,
    aten.mm: _matmul_raw,
    aten.bmm: _matmul_raw,
    aten.addmm: _addmm_raw,
    aten._fft_r2c: _fft_r2c,
    aten._fft_c2r: _fft_c2r,
    aten._fft_c2c: _fft_c2c,
}


def flop_counter() -> FlopCounterMode:
    return FlopCounterMode(display=False, custom_mapping=dict(CUSTOM_FORMULAS))


def count_flops(fn: Callable[[], object]) -> tuple[int, dict]:
    """Run ``fn`` under the corrected counter; returns (total flops, flops per aten op)."""
    counter = flop_counter()
    with counter:
        fn()
    per_op = {str(k): v for k, v in counter.get_flop_counts().get("Global", {}).items()}
    return counter.get_total_flops(), per_op


def stock_count_flops(fn: Callable[[], object]) -> int:
    """The unmodified counter, for comparison."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()
