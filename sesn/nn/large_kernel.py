"""``conv2d`` for large kernels by FFT: the same cross-correlation as ``F.conv2d`` (stride 1,
zero padding, groups), evaluated as a product of spectra.

The spectral path is the one the steerable layers use (:mod:`sesn.nn.fft_conv`): the input
zero-padded at the end to ``L = max(N + p, k)`` per axis (a smooth length), the sum over
input channels one *real* GEMM per frequency with the kernels' block matrix, the inverse two
real GEMMs that synthesise only the output window (no complex matmuls, whose CPU backward
loops over the frequencies, and no autograd rfft2 backward over the full spectrum).

A direct convolution costs ``k^2`` multiply-adds per output and input channel; the spectral
one a fixed amount per frequency, independent of k. The baselines that resize a kernel to
many sizes (pixel pool, SiCNN: kernels up to 23-29 px on 64 px images in the STIR models)
are where it pays; :func:`conv2d` takes this path from :data:`FFT_MIN_KERNEL` taps up
(stride 1), and the environment variable ``SESN_LARGE_KERNEL=direct|fft`` forces one path
(e.g. to compare them). The two agree to float round-off (``tests/test_large_kernel.py``).

Memory: under autograd the spectral path keeps only the input and the kernels; the input
spectra and the kernel matrix are recomputed in backward (:func:`~sesn.nn.fft_conv.spectral_conv`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sesn import settings
from sesn.nn.fft_conv import (
    SpectralPlan,
    batch_chunks,
    fft_precision,
    inverse,
    inverse_adjoint,
    item_bytes,
    kernel_product_matrix,
    smooth_length,
    spectral_conv,
    spectrum,
)

FFT_MIN_KERNEL = 15


def spectral_plan(x_shape, weight_shape, padding: int, groups: int, itemsize: int) -> SpectralPlan:
    """The :class:`~sesn.nn.fft_conv.SpectralPlan` of ``F.conv2d`` (stride 1) by FFT.

    Per axis the input is zero-padded at the end to ``L = max(N + p, k)`` (rounded to a smooth
    length) and the correlation's outputs are read back with the shift ``p`` (the construction
    of :mod:`sesn.nn.fft_conv`); the sum over input channels is one real GEMM per frequency
    with the kernels' block matrix; the inverse is two real GEMMs that synthesise only the
    output window."""
    b, c, h, w = x_shape
    o, cg, kh, kw = weight_shape
    out_h, out_w = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    og = o // groups
    lh, lw = smooth_length(max(h + padding, kh)), smooth_length(max(w + padding, kw))
    fw = lw // 2 + 1
    nf = lh * fw

    def kernel_matrix(weight):  # [G, F, (2, Og), (2, Cg)]
        return kernel_product_matrix(weight.reshape(groups, og, cg, kh, kw), lh, lw)

    def input_matrix(xc):  # [G, F, (2, Cg), Bc]
        bc = xc.shape[0]
        return spectrum(xc, lh, lw).view(bc, groups, cg, nf, 2).permute(1, 3, 4, 2, 0).reshape(groups, nf, 2 * cg, bc)

    def output(y, bc):  # [G, F, (2, Og), Bc] -> [Bc, O, out_h, out_w]
        y = inverse(y.view(groups, lh, fw, 2, og * bc), lh, lw, out_h, out_w, padding)
        return y.view(groups, out_h, out_w, og, bc).permute(4, 0, 3, 1, 2).reshape(bc, o, out_h, out_w)

    def output_adjoint(gc):
        bc = gc.shape[0]
        g = gc.reshape(bc, groups, og, out_h, out_w).permute(1, 3, 4, 2, 0).reshape(groups, out_h, out_w, og * bc)
        return inverse_adjoint(g, lh, lw, out_h, out_w, padding).view(groups, nf, 2 * og, bc)

    chunks = batch_chunks(b, item_bytes(lh, lw, out_h, out_w, groups, og, cg, og, itemsize))
    return SpectralPlan(kernel_matrix, input_matrix, output, output_adjoint, chunks)


def fft_conv2d(x: torch.Tensor, weight: torch.Tensor, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding, groups=groups)`` (stride 1) by FFT
    (:func:`spectral_plan`), in float32 for half-precision inputs. Under autograd only the
    input and the kernels are kept; spectra and the kernel matrix are recomputed in backward
    (:func:`~sesn.nn.fft_conv.spectral_conv`)."""
    if x.dim() != 4 or weight.dim() != 4:
        raise ValueError(f"fft_conv2d: expected a 4-d input and weight, got {list(x.shape)} and {list(weight.shape)}")
    b, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c != cg * groups or o % groups:
        raise ValueError(
            f"fft_conv2d: input channels {c}, weight {list(weight.shape)} and groups {groups} do not match"
        )
    if h + 2 * padding < kh or w + 2 * padding < kw:
        padded = f"{h + 2 * padding}x{w + 2 * padding}"
        raise ValueError(f"fft_conv2d: kernel {kh}x{kw} larger than the padded input {padded}")
    xf, wf = fft_precision(x), fft_precision(weight)
    plan = spectral_plan(x.shape, weight.shape, padding, groups, xf.element_size())
    return spectral_conv(xf, wf, plan).to(x.dtype)


def uses_fft(kernel_size: int, stride: int = 1) -> bool:
    """Whether :func:`conv2d` takes the spectral path for this kernel size (``SESN_LARGE_KERNEL``:
    ``auto`` from :data:`FFT_MIN_KERNEL` taps up; a value outside auto/direct/fft is a
    ValueError naming it)."""
    mode = settings.large_kernel_mode()
    return stride == 1 and (mode == "fft" or (mode == "auto" and kernel_size >= FFT_MIN_KERNEL))


def conv2d(x: torch.Tensor, weight: torch.Tensor, padding: int = 0, groups: int = 1, stride: int = 1) -> torch.Tensor:
    """``F.conv2d``, by FFT for kernels of :data:`FFT_MIN_KERNEL` taps or more (stride 1)."""
    if uses_fft(min(weight.shape[-2:]), stride):
        return fft_conv2d(x, weight, padding, groups)
    return F.conv2d(x, weight, stride=stride, padding=padding, groups=groups)
