"""``conv2d`` for large kernels by FFT: the same cross-correlation as ``F.conv2d`` (stride 1,
zero padding, groups), evaluated as a product of spectra.

With the input zero-padded by p on each side (length ``N + 2p``) and a k-tap kernel, the
circular correlation of length ``L = N + 2p`` (``L >= k``),
``c = irfft(rfft(x_pad) * conj(rfft(w, L)))``, equals the linear one at the output
positions ``0 .. N + 2p - k``: none of them wraps around. Per frequency the sum over input
channels is one batched complex matrix product over (group, frequency).

A direct convolution costs ``k^2`` multiply-adds per output and input channel; the spectral
one a fixed amount per frequency, independent of k. The baselines that resize a kernel to
many sizes (pixel pool, SiCNN: kernels up to 23-29 px on 64 px images in the STIR models)
are where it pays; :func:`conv2d` takes this path from :data:`FFT_MIN_KERNEL` taps up
(stride 1), and the environment variable ``SESN_LARGE_KERNEL=direct|fft`` forces one path
(e.g. to compare them). The two agree to float round-off (``tests/test_large_kernel.py``).

Memory: the spectral path holds the spectra of the padded input and of every output channel
(complex, on the padded grid) and keeps them for backward, several times what the direct
path holds; measured per model in docs/scale-generalization.md ("Large kernels by FFT").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sesn import settings

FFT_MIN_KERNEL = 15


def fft_conv2d(x: torch.Tensor, weight: torch.Tensor, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """``F.conv2d(x, weight, padding=padding, groups=groups)`` (stride 1) by FFT."""
    b, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    if c != cg * groups or o % groups:
        raise ValueError(
            f"fft_conv2d: input channels {c}, weight {list(weight.shape)} and groups {groups} do not match"
        )
    lh, lw = h + 2 * padding, w + 2 * padding
    if lh < kh or lw < kw:
        raise ValueError(f"fft_conv2d: kernel {kh}x{kw} larger than the padded input {lh}x{lw}")
    og = o // groups
    xs = torch.fft.rfft2(F.pad(x, (padding,) * 4) if padding else x, s=(lh, lw))  # [B, C, Lh, Fw]
    ks = torch.fft.rfft2(weight, s=(lh, lw)).conj()  # [O, Cg, Lh, Fw]
    nf = lh * xs.shape[-1]
    xf = xs.reshape(b, groups, cg, nf).permute(1, 3, 0, 2).reshape(groups * nf, b, cg)
    kf = ks.reshape(groups, og, cg, nf).permute(0, 3, 2, 1).reshape(groups * nf, cg, og)
    yf = torch.bmm(xf, kf)  # [G F, B, Og]
    ys = yf.reshape(groups, lh, -1, b, og).permute(3, 0, 4, 1, 2).reshape(b, o, lh, -1)
    y = torch.fft.irfft2(ys, s=(lh, lw))
    return y[..., : lh - kh + 1, : lw - kw + 1]


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
