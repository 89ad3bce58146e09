"""FFT evaluation of the steerable convolutions (stride 1).

For cross-correlation with zero padding p, pad the input to L = N + 2p per axis; then
``y[o] = sum_t x_p[o + t] k[t]`` for ``o < N + 2p - k + 1`` equals the first outputs of the
circular correlation ``irfft(rfft(x_p) * conj(rfft(k, L)))`` (no wrap-around reaches them).
One input spectrum serves the kernels of every scale, and the sum over input channels
(and scale taps) is one complex batched matmul per frequency.

The inverse transform is done as two GEMMs with DFT matrices cropped to the output
window (only ``out_h`` rows and ``out_w`` columns are synthesised): on CPU this is several
times faster than ``torch.fft.irfft2`` over the many small output planes of a layer.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F


def input_spectrum(x: torch.Tensor, padding: int) -> tuple[torch.Tensor, int, int]:
    """rfft2 of the zero-padded input ``[..., H, W]`` -> (spectrum, L_h, L_w)."""
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))
    lh, lw = x.shape[-2:]
    return torch.fft.rfft2(_fft_precision(x)), lh, lw


def kernel_spectrum(kernel: torch.Tensor, lh: int, lw: int) -> torch.Tensor:
    """conj(rfft2(kernel zero-padded to L_h x L_w)) for ``[..., k, k]`` kernels."""
    return torch.fft.rfft2(_fft_precision(kernel), s=(lh, lw)).conj()


def _fft_precision(x: torch.Tensor) -> torch.Tensor:
    """FFTs run in float32 for half-precision tensors (no half FFT on CPU, and cuFFT's only
    for powers of 2); the layer casts the result back to the input's dtype."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


@functools.lru_cache(maxsize=64)
def _inverse_matrices(lh: int, lw: int, out_h: int, out_w: int, dtype: torch.dtype, device: str):
    fw = lw // 2 + 1
    h = torch.arange(out_h, dtype=torch.float64).view(-1, 1)
    u = torch.arange(lh, dtype=torch.float64).view(1, -1)
    rows = torch.exp(2j * math.pi * h * u / lh)  # [out_h, L_h]
    v = torch.arange(fw, dtype=torch.float64).view(-1, 1)
    w = torch.arange(out_w, dtype=torch.float64).view(1, -1)
    weight = torch.full((fw, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if lw % 2 == 0:
        weight[-1] = 1.0  # Nyquist column counted once
    ang = 2 * math.pi * v * w / lw
    scale = 1.0 / (lh * lw)
    cols = torch.cat([weight * torch.cos(ang), -weight * torch.sin(ang)], 0) * scale  # [2 Fw, out_w]
    cdtype = torch.complex64 if dtype == torch.float32 else torch.complex128
    return rows.to(cdtype).to(device), cols.to(dtype).to(device)


def inverse_rows_first(spec: torch.Tensor, lh: int, lw: int, out_h: int, out_w: int) -> torch.Tensor:
    """Inverse of a spectrum laid out ``[L_h, Fw, N]`` (complex) -> ``[out_h, out_w, N]`` real:
    the spatial window ``[:out_h, :out_w]`` of ``irfft2`` over the first two axes."""
    real_dtype = spec.real.dtype
    rows, cols = _inverse_matrices(lh, lw, out_h, out_w, real_dtype, str(spec.device))
    fw, n = spec.shape[1], spec.shape[2]
    z = (rows @ spec.reshape(lh, fw * n)).view(out_h, fw, n)  # along h: one complex GEMM
    zs = torch.cat([z.real, z.imag], 1)  # [out_h, 2 Fw, N]
    return torch.matmul(cols.T, zs)  # along w (c2r): [out_h, out_w, N]


def fft_cost(batch, c_in, c_out, taps, scales, h, w, padding, out_h=None, out_w=None) -> float:
    """Rough real multiply-add count of the FFT path: forward transforms, the spectral
    products, and the cropped matrix inverse."""
    lh, lw = h + 2 * padding, w + 2 * padding
    out_h = lh if out_h is None else out_h
    out_w = lw if out_w is None else out_w
    fw = lw // 2 + 1
    forward = 2.5 * lh * lw * math.log2(max(lh * lw, 2)) * batch * c_in * (scales + taps - 1)
    products = 4.0 * lh * fw * batch * c_in * taps * c_out * scales
    inverse = batch * c_out * scales * (4.0 * out_h * lh * fw + 2.0 * out_h * fw * out_w)
    return forward + products + inverse


def in_bounds_taps(size: int, out: int, window: int, full: int, stride: int, padding: int) -> int:
    """Kernel taps (of an odd ``window`` centred in a ``full``-tap kernel) that land on the
    input rather than on zero padding, summed over the ``out`` output positions of one axis.
    oneDNN's direct convolution skips the padding taps, so this is what it computes."""
    first = (full - window) // 2
    total = 0
    for o in range(out):
        lo = max(first, padding - o * stride)
        hi = min(first + window, size + padding - o * stride)
        total += max(0, hi - lo)
    return total


def direct_cost(batch, c_in, c_out, taps, windows, out_h, out_w, in_h=None, in_w=None, full=None, stride=1, padding=0) -> float:
    """Multiply-adds of the windowed direct path (padding taps excluded when the input
    size is given)."""
    if in_h is None:
        return float(batch * c_in * taps * c_out * out_h * out_w * sum(m * m for m in windows))
    per_pixel = sum(
        in_bounds_taps(in_h, out_h, m, full, stride, padding) * in_bounds_taps(in_w, out_w, m, full, stride, padding) for m in windows
    )
    return float(batch * c_in * taps * c_out * per_pixel)
