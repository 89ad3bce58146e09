"""FFT evaluation of the steerable convolutions (stride 1), in real arithmetic.

Cross-correlation with zero padding p and a k-tap kernel, ``y[o] = sum_t x[o + t - p] k[t]``
for ``o < N + 2p - k + 1``, reads input positions ``-p .. N + p - 1``. With ``x'`` the input
zero-padded *at the end* to a length ``L >= max(N + p, k)`` and the circular correlation
``c = irfft(rfft(x') * conj(rfft(k, L)))``, every one of those positions outside ``[0, N)``
lands (mod L) on a trailing zero of ``x'``, so ``y[o] = c[(o - p) mod L]``. The shift is
folded into the inverse DFT matrices; ``L = max(N + p, k)`` rather than ``N + 2p`` (the usual
"pad both sides, no wrap-around at all") gives fewer frequencies: at 14x14 with 15x15
kernels, 21x11 instead of 28x15.

One input spectrum serves the kernels of every scale (and, for H -> H, every scale tap),
and the sum over input channels and taps is one *real* batched GEMM per frequency: with
``X = Xr + i Xi`` (the input spectra, contraction index c) and ``K = Kr + i Ki`` (the
conjugated kernel spectra), ``Y = K^T X`` is

    [Yr]   [Kr^T  -Ki^T] [Xr]
    [Yi] = [Ki^T   Kr^T] [Xi]

(:func:`real_product_matrix` builds the block matrix, which is cached with the kernel).
The real and imaginary parts are then stacked next to the frequency axes, ``[Lh, Fw, 2, M]``,
and the cropped inverse is two real GEMMs with DFT matrices, width first (a batched GEMM
over the (v, re/im) pairs of each row frequency), then height (one GEMM over the (u, re/im)
pairs): only the ``out_h x out_w`` window is synthesised. On CPU this is several times
faster than complex matmuls and ``torch.fft.irfft2`` over the many small output planes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
from typing import Callable

import torch

# The batch is processed in chunks whose largest intermediate (spectra, product, the
# inverse's half-way result) stays below this many bytes. Small chunks win in a layer-level
# microbenchmark but lose in whole models (skinny product GEMMs, the kernel matrix re-read
# for every chunk); measured in docs/speed.md ("Batch chunks").
CHUNK_BYTES = 256 * 2**20


def batch_chunks(batch: int, bytes_per_item: int) -> list[int]:
    """Sizes of the batch chunks (near-equal, each under :data:`CHUNK_BYTES` where possible)."""
    per = max(1, CHUNK_BYTES // max(1, bytes_per_item))
    n = -(-batch // per)
    base, extra = divmod(batch, n)
    return [base + 1] * extra + [base] * (n - extra)


def item_bytes(
    lh: int, lw: int, out_h: int, out_w: int, groups: int, rows: int, cols: int, m: int, itemsize: int
) -> int:
    """Bytes of the largest per-batch-item intermediate: product input ``[G, F, 2 cols]`` and
    output ``[G, F, 2 rows]``, the inverse's ``[G, L_h, 2 out_w, m]`` (``m`` outputs per item)."""
    f = lh * (lw // 2 + 1)
    return itemsize * groups * max(2 * f * cols, 2 * f * rows, lh * 2 * out_w * m)


def fft_precision(x: torch.Tensor) -> torch.Tensor:
    """FFTs run in float32 for half-precision tensors (no half FFT on CPU, and cuFFT's only
    for powers of 2); the layer casts the result back to the input's dtype."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kernel_crop(h: int, w: int, padding: int, kernel_size: int) -> int:
    """Taps that can be cut from each side of a ``kernel_size`` kernel on an ``h x w`` input
    (stride 1): on an axis of N, the first and last ``k - N - p`` taps read only zero
    padding for every output, so the ``k - 2a`` central taps with padding ``p - a`` give the
    same outputs. Maps smaller than the kernel then take shorter transforms: at 7x7 with
    15x15 kernels, padding 7, 13x13 (91 frequencies) instead of 15x15 (120)."""
    return max(0, min(kernel_size - h - padding, kernel_size - w - padding))


def transform_plan(h: int, w: int, padding: int, kernel_size: int) -> tuple[int, int, int, int]:
    """``(a, p', L_h, L_w)``: the :func:`kernel_crop` ``a``, the padding ``p' = p - a`` of the
    cropped ``k - 2a``-tap kernel (the inverse's shift), and the :func:`padded_sizes` of that
    cropped correlation."""
    a = kernel_crop(h, w, padding, kernel_size)
    return (a, padding - a, *padded_sizes(h, w, padding - a, kernel_size - 2 * a))


# Transform lengths at least this long are rounded up to the next 7-smooth number (no prime
# factor above 7): pocketfft transforms a length with a large prime factor (71 = 64 + 7 at
# STIR's 64 px, 103 at STL-10's 96 px) by Bluestein's algorithm, several times slower than a
# smooth length a few samples longer; below it, the extra frequencies cost more than the
# transform saves (MNIST's 13 = 7 + 6 stays 13). Measured in docs/speed.md ("Efficiency per
# family, and the STIR profile").
SMOOTH_FROM = 32


def smooth_length(n: int) -> int:
    """The smallest ``m >= n`` with no prime factor above 7 (``n`` itself below :data:`SMOOTH_FROM`)."""
    if n < SMOOTH_FROM:
        return n
    m = n
    while True:
        r = m
        for p in (2, 3, 5, 7):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def padded_sizes(h: int, w: int, padding: int, kernel_size: int) -> tuple[int, int]:
    """Transform sizes per axis: ``L = max(N + p, k)``, the smallest circular length in which
    no output of the padded correlation wraps onto input data (see the module docstring),
    rounded up by :func:`smooth_length` (any longer length is as exact)."""
    return smooth_length(max(h + padding, kernel_size)), smooth_length(max(w + padding, kernel_size))


class _Rfft2(torch.autograd.Function):
    """``torch.fft.rfft2(x, s=(L_h, L_w))`` of a real ``[..., h, w]`` (zero-padded at the end),
    with the adjoint as one inverse real transform of the same size.

    With ``g`` the gradient of the half spectrum ``y`` (``dL/dRe y + i dL/dIm y``), the input
    gradient is ``dL/dx[n] = Re sum_k g[k] exp(2 pi i k.n / L)`` over the stored half of the
    spectrum. ``irfft2`` sums the same terms with weight 2 on the interior columns (the
    Hermitian partner of each) and 1 on the DC and Nyquist columns, divided by ``L_h L_w``:
    so ``dx = L_h L_w irfft2(g')`` with the interior columns of ``g`` halved, cropped to
    ``h x w``. Autograd's own backward of rfft2 zero-fills the full spectrum and runs a complex
    transform (several times the forward's time, docs/speed.md)."""

    @staticmethod
    def forward(ctx, x, lh, lw):
        ctx.geometry = (x.shape[-2], x.shape[-1], lh, lw)
        return torch.fft.rfft2(x, s=(lh, lw))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        h, w, lh, lw = ctx.geometry
        if 4 * h * w <= lh * lw:  # a kernel on a long transform: only h x w of the inverse is needed
            return _pruned_adjoint(g, h, w, lh, lw), None, None
        g = g.clone()
        last = g.shape[-1] - (1 if lw % 2 == 0 else 0)  # interior columns: 1 .. last - 1
        g[..., 1:last] *= 0.5
        dx = torch.fft.irfft2(g, s=(lh, lw)) * (lh * lw)
        return dx[..., :h, :w], None, None


@functools.lru_cache(maxsize=64)
def _adjoint_matrices(h: int, w: int, lh: int, lw: int, dtype: torch.dtype, device: str):
    """Real matrices of ``dx[n, m] = Re sum_{u, v} g[u, v] exp(2 pi i (u n / L_h + v m / L_w))``
    for ``n < h``, ``m < w``: height ``[(c, n), u]`` (c: cos, sin) and width ``[(c, v, a), m]``
    (a: real, imaginary part of g)."""
    fw = lw // 2 + 1
    n = torch.arange(h, dtype=torch.float64).view(-1, 1)
    u = torch.arange(lh, dtype=torch.float64).view(1, -1)
    theta = 2 * math.pi * n * u / lh  # [h, Lh]
    high = torch.cat([torch.cos(theta), torch.sin(theta)], 0)  # [(c, n), Lh]
    v = torch.arange(fw, dtype=torch.float64).view(-1, 1)
    m = torch.arange(w, dtype=torch.float64).view(1, -1)
    c, s = torch.cos(2 * math.pi * v * m / lw), torch.sin(2 * math.pi * v * m / lw)  # [Fw, w]
    # with R_c = sum_u (cos | sin)(theta) g: Re(...) = (R_cos,re - R_sin,im) cos - (R_sin,re + R_cos,im) sin
    wide = torch.stack([torch.stack([c, -s], 1), torch.stack([-s, -c], 1)], 0)  # [2, Fw, 2, w]
    return high.to(device=device, dtype=dtype), wide.reshape(4 * fw, w).to(device=device, dtype=dtype)


def _pruned_adjoint(g: torch.Tensor, h: int, w: int, lh: int, lw: int) -> torch.Tensor:
    """The adjoint of the zero-padded rfft2 for a small ``h x w`` input: two real GEMMs with
    DFT matrices that synthesise only the ``h x w`` window (no full inverse transform)."""
    fw = g.shape[-1]
    gr = torch.view_as_real(g.resolve_conj()).reshape(-1, lh, 2 * fw)  # [P, Lh, (v, a)]
    high, wide = _adjoint_matrices(h, w, lh, lw, gr.dtype, str(gr.device))
    r = torch.matmul(high, gr)  # [P, (c, n), (v, a)]
    r = r.view(-1, 2, h, 2 * fw).transpose(1, 2).reshape(-1, h, 4 * fw)  # [P, n, (c, v, a)]
    return torch.matmul(r, wide).view(*g.shape[:-2], h, w)


def rfft2(x: torch.Tensor, lh: int, lw: int) -> torch.Tensor:
    """``torch.fft.rfft2(x, s=(lh, lw))`` with a fast backward (:class:`_Rfft2`); ``x`` real,
    ``h <= lh``, ``w <= lw``."""
    if torch.is_grad_enabled() and x.requires_grad:
        return _Rfft2.apply(x, lh, lw)
    return torch.fft.rfft2(x, s=(lh, lw))


def spectrum(x: torch.Tensor, lh: int, lw: int) -> torch.Tensor:
    """Real view ``[..., L_h, F_w, 2]`` of rfft2 of ``[..., h, w]`` zero-padded at the end
    to ``L_h x L_w`` (``F_w = L_w // 2 + 1``; last axis: real, imaginary part)."""
    return torch.view_as_real(rfft2(fft_precision(x), lh, lw))


def _blocks(kr: torch.Tensor, ki: torch.Tensor) -> torch.Tensor:
    """``[..., N, C]`` real and imaginary parts -> ``[..., 2N, 2C]`` ``[[Kr, -Ki], [Ki, Kr]]``,
    written block by block (no cat of cats)."""
    n, c = kr.shape[-2:]
    out = kr.new_empty((*kr.shape[:-2], 2 * n, 2 * c))
    out[..., :n, :c] = kr
    torch.neg(ki, out=out[..., :n, c:])
    out[..., n:, :c] = ki
    out[..., n:, c:] = kr
    return out


def _block_gradients(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The adjoint of :func:`_blocks`: ``d Re = G_11 + G_22``, ``d Im = G_21 - G_12``."""
    n, c = g.shape[-2] // 2, g.shape[-1] // 2
    return g[..., :n, :c] + g[..., n:, c:], g[..., n:, :c] - g[..., :n, c:]


def real_product_matrix(ks: torch.Tensor) -> torch.Tensor:
    """``[..., N, C]`` complex (conjugated kernel spectra) -> ``[..., 2N, 2C]`` real
    ``[[Kr, -Ki], [Ki, Kr]]``: times ``[Xr; Xi]`` (``[..., 2C, M]``) it gives
    ``[Re(K X); Im(K X)]``. (The layers build theirs with :func:`kernel_product_matrix`.)"""
    kr, ki = ks.real, ks.imag
    return torch.cat([torch.cat([kr, -ki], -1), torch.cat([ki, kr], -1)], -2)


class _BlockFromParts(torch.autograd.Function):
    """``[G, 2, F, R, C]`` (real, imaginary part) -> ``[G, F, 2R, 2C]`` ``[[Kr, -Ki], [Ki, Kr]]``;
    the gradient comes back in the input's layout (no slice backward)."""

    @staticmethod
    def forward(ctx, parts):
        return _blocks(parts[:, 0], parts[:, 1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        return torch.stack(_block_gradients(grad), 1)


@functools.lru_cache(maxsize=64)
def _kernel_dft_matrices(kh: int, kw: int, lh: int, lw: int, dtype: torch.dtype, device: str):
    """Real DFT matrices of the conjugated spectrum ``sum_{n, m} k[n, m] exp(+2 pi i (u n / L_h
    + v m / L_w))`` of a ``kh x kw`` kernel: width ``[m, (a, v)]`` and height ``[(b, u), (n, a)]``
    (a, b: real, imaginary part)."""
    fw = lw // 2 + 1
    m = torch.arange(kw, dtype=torch.float64).view(-1, 1)
    v = torch.arange(fw, dtype=torch.float64).view(1, -1)
    phi = 2 * math.pi * m * v / lw  # [kw, Fw]
    wide = torch.cat([torch.cos(phi), torch.sin(phi)], 1)  # [m, (a, v)]
    u = torch.arange(lh, dtype=torch.float64).view(-1, 1)
    n = torch.arange(kh, dtype=torch.float64).view(1, -1)
    c, s = torch.cos(2 * math.pi * u * n / lh), torch.sin(2 * math.pi * u * n / lh)  # [Lh, kh]
    # Re = cos Tr - sin Ti, Im = sin Tr + cos Ti (T: the width transform, a = re, im)
    high = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], 0)  # [b, u, n, a]
    return wide.to(device=device, dtype=dtype), high.reshape(2 * lh, 2 * kh).to(device=device, dtype=dtype)


def kernel_product_matrix(kern: torch.Tensor, lh: int, lw: int) -> torch.Tensor:
    """``[G, R, C, kh, kw]`` real kernels -> ``[G, F, 2R, 2C]``: the :func:`real_product_matrix`
    of their conjugated ``L_h x L_w`` spectra, ``F = L_h (L_w // 2 + 1)`` frequencies, computed as
    two real GEMMs with DFT matrices over the kernel's few taps. Same values as
    ``real_product_matrix(rfft2(kern, s).conj())`` permuted to ``[G, F, R, C]``, without that
    large tensor's permute copies, and differentiable by GEMMs (autograd's rfft2 backward is a
    complex transform of the whole zero-padded kernel)."""
    g, r, c, kh, kw = kern.shape
    fw = lw // 2 + 1
    wide, high = _kernel_dft_matrices(kh, kw, lh, lw, kern.dtype, str(kern.device))
    t = torch.matmul(kern, wide)  # [G, R, C, n, (a, v)]
    t = t.view(g, r, c, kh, 2, fw).permute(0, 3, 4, 5, 1, 2).reshape(g, 2 * kh, fw * r * c)  # [G, (n, a), (v, R, C)]
    parts = torch.matmul(high, t).view(g, 2, lh * fw, r, c)  # [G, b, (u, v), R, C]
    if torch.is_grad_enabled() and parts.requires_grad:
        return _BlockFromParts.apply(parts)
    # no graph to save for: plain ops, which forward-mode AD (torch.func.jvp) differentiates too
    kr, ki = parts[:, 0], parts[:, 1]
    return torch.cat([torch.cat([kr, -ki], -1), torch.cat([ki, kr], -1)], -2)


@functools.lru_cache(maxsize=64)
def _inverse_matrices(lh: int, lw: int, out_h: int, out_w: int, shift: int, dtype: torch.dtype, device: str):
    """Real DFT synthesis matrices for the window ``[shift - p ...]`` of irfft2:
    width ``[(a, w), (v, r)]`` (a, r: real/imaginary) and height ``[h, (u, a)]``."""
    fw = lw // 2 + 1
    v = torch.arange(fw, dtype=torch.float64).view(-1, 1)
    w = torch.arange(out_w, dtype=torch.float64).view(1, -1) - shift
    weight = torch.full((fw, 1), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if lw % 2 == 0:
        weight[-1] = 1.0  # Nyquist column counted once
    phi = 2 * math.pi * v * w / lw  # [Fw, out_w]
    c, s = (weight * torch.cos(phi)).T, (weight * torch.sin(phi)).T  # [out_w, Fw]
    # T_re = sum_v c_v (cos Y_re - sin Y_im), T_im = sum_v c_v (sin Y_re + cos Y_im)
    wide = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], 0)  # [2, out_w, Fw, 2]
    h = torch.arange(out_h, dtype=torch.float64).view(-1, 1) - shift
    u = torch.arange(lh, dtype=torch.float64).view(1, -1)
    theta = 2 * math.pi * h * u / lh  # [out_h, Lh]
    # y = Re(sum_u e^{i theta} T) = sum_u cos T_re - sin T_im
    high = torch.stack([torch.cos(theta), -torch.sin(theta)], -1) / (lh * lw)  # [out_h, Lh, 2]
    return (
        wide.reshape(2 * out_w, 2 * fw).to(device=device, dtype=dtype),
        high.reshape(out_h, 2 * lh).to(device=device, dtype=dtype),
    )


def inverse(y: torch.Tensor, lh: int, lw: int, out_h: int, out_w: int, shift: int) -> torch.Tensor:
    """Inverse of spectra laid out ``[G, L_h, F_w, 2, M]`` (real; 2: real, imaginary part)
    -> ``[G, out_h, out_w, M]``: the window ``[(o - shift) mod L]`` of irfft2 over the
    frequency axes, as two real GEMMs."""
    g, fw, m = y.shape[0], y.shape[2], y.shape[-1]
    wide, high = _inverse_matrices(lh, lw, out_h, out_w, shift, y.dtype, str(y.device))
    t = torch.matmul(wide, y.reshape(g * lh, 2 * fw, m))  # [G Lh, 2 out_w, M]: (u, a, w)
    return torch.matmul(high, t.view(g, 2 * lh, out_w * m)).view(g, out_h, out_w, m)


def inverse_adjoint(g: torch.Tensor, lh: int, lw: int, out_h: int, out_w: int, shift: int) -> torch.Tensor:
    """The adjoint of :func:`inverse`: ``[G, out_h, out_w, M]`` -> ``[G, L_h, F_w, 2, M]``
    (the transposed DFT matrices, height first)."""
    gr, m = g.shape[0], g.shape[-1]
    fw = lw // 2 + 1
    wide, high = _inverse_matrices(lh, lw, out_h, out_w, shift, g.dtype, str(g.device))
    t = torch.matmul(high.T, g.reshape(gr, out_h, out_w * m))  # [G, 2 Lh, out_w M]
    return torch.matmul(wide.T, t.view(gr * lh, 2 * out_w, m)).view(gr, lh, fw, 2, m)


@dataclasses.dataclass
class SpectralPlan:
    """How a layer's FFT path turns its kernels and an input chunk into the matrices of one
    product ``Y = K @ X``, and ``Y`` into its output: the pieces :func:`spectral_conv`
    differentiates.

    Attributes:
        kernel_matrix: kernels (differentiable) -> ``K`` (:func:`real_product_matrix` form).
        input_matrix: an input chunk (differentiable) -> ``X``.
        output: ``(Y, chunk size)`` -> output chunk ``[Bc, O, S, H', W']`` (linear).
        output_adjoint: an output-gradient chunk -> the gradient of ``Y`` (its adjoint).
        chunks: batch chunk sizes.
    """

    kernel_matrix: Callable[[torch.Tensor], torch.Tensor]
    input_matrix: Callable[[torch.Tensor], torch.Tensor]
    output: Callable[[torch.Tensor, int], torch.Tensor]
    output_adjoint: Callable[[torch.Tensor], torch.Tensor]
    chunks: list


def _into(parts, total: int) -> torch.Tensor:
    """Concatenate the batch chunks that ``parts`` yields along the batch, each written into
    one preallocated result as it comes (no list of chunks and a copy of them all at the
    end); one chunk is returned as it is."""
    out, start = None, 0
    for part in parts:
        if out is None:
            if part.shape[0] == total:
                return part
            out = part.new_empty((total, *part.shape[1:]))
        out[start : start + part.shape[0]] = part
        start += part.shape[0]
    return out


def spectral_forward(x: torch.Tensor, km: torch.Tensor, plan: SpectralPlan) -> torch.Tensor:
    parts = (plan.output(torch.matmul(km, plan.input_matrix(xc)), xc.shape[0]) for xc in x.split(plan.chunks))
    return _into(parts, x.shape[0])


class _SpectralConv(torch.autograd.Function):
    """The FFT path under autograd, keeping only the input and the (small) kernels.

    Autograd of the composed path keeps the input spectra ``X`` (per scale and tap, about
    2 x the input's size per scale at MNIST sizes) and the kernel matrix ``K`` (as large as
    the layer's weight times the number of frequencies) for the product's backward. Here
    both are recomputed in backward, ``X`` chunk by chunk, and the gradients follow from
    ``dK = dY X^T``, ``dX = K^T dY`` with ``dY`` the adjoint of the output map; the
    transforms are differentiated by autograd on the recomputation. Not twice differentiable."""

    @staticmethod
    def forward(ctx, x, kernel, plan):
        ctx.plan = plan
        ctx.save_for_backward(x, kernel)
        return spectral_forward(x, plan.kernel_matrix(kernel), plan)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, kernel = ctx.saved_tensors
        plan = ctx.plan
        grad = fft_precision(grad)
        need_x, need_k = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        with torch.enable_grad():
            kd = kernel.detach().requires_grad_(need_k)
            km = plan.kernel_matrix(kd)
        km_t = km.detach().transpose(-1, -2)
        g_km = None

        def chunks():
            nonlocal g_km
            for xc, gc in zip(x.split(plan.chunks), grad.split(plan.chunks)):
                gy = plan.output_adjoint(gc)
                with torch.enable_grad():
                    xd = xc.detach().requires_grad_(need_x)
                    xm = plan.input_matrix(xd)
                if need_k:  # dK += dY X^T, accumulated in place
                    if g_km is None:
                        g_km = torch.matmul(gy, xm.detach().transpose(-1, -2))
                    else:
                        r, c = g_km.shape[-2:]
                        g_km.view(-1, r, c).baddbmm_(
                            gy.reshape(-1, r, gy.shape[-1]), xm.detach().reshape(-1, c, gy.shape[-1]).transpose(1, 2)
                        )
                if need_x:
                    yield torch.autograd.grad(xm, xd, torch.matmul(km_t, gy))[0]

        if need_x:
            gx = _into(chunks(), x.shape[0])
        else:
            gx = None
            for _ in chunks():
                pass
        gk = torch.autograd.grad(km, kd, g_km)[0] if need_k else None
        return gx, gk, None


def spectral_conv(x: torch.Tensor, kernel: torch.Tensor, plan: SpectralPlan) -> torch.Tensor:
    """The FFT path: under autograd via :class:`_SpectralConv` (lean in memory). Computed in
    float32 (or float64) with autocast off: the layer casts the result to its output dtype."""
    with autocast_off(x):
        if torch.is_grad_enabled() and (x.requires_grad or kernel.requires_grad):
            return _SpectralConv.apply(x, kernel, plan)
        return spectral_forward(x, plan.kernel_matrix(kernel), plan)


def autocast_off(x: torch.Tensor):
    """``torch.autocast(..., enabled=False)`` for ``x``'s device (a no-op context on devices
    autocast does not know, e.g. meta)."""
    if x.device.type in ("cpu", "cuda"):
        return torch.autocast(x.device.type, enabled=False)
    return contextlib.nullcontext()


def fft_cost(batch, c_in, c_out, taps, scales, h, w, padding, out_h=None, out_w=None) -> float:
    """Rough real multiply-add count of the FFT path: forward transforms, the spectral
    products (4 real per complex multiply-add), and the cropped two-GEMM inverse. The
    transform sizes are :func:`transform_plan`'s (the kernel size is read off the output size)."""
    out_h = h + 2 * padding if out_h is None else out_h
    out_w = w + 2 * padding if out_w is None else out_w
    k = max(h + 2 * padding - out_h + 1, w + 2 * padding - out_w + 1)
    _, _, lh, lw = transform_plan(h, w, padding, k)
    fw = lw // 2 + 1
    forward = 2.5 * lh * lw * math.log2(max(lh * lw, 2)) * batch * c_in * (scales + taps - 1)
    products = 4.0 * lh * fw * batch * c_in * taps * c_out * scales
    inverse = batch * c_out * scales * (4.0 * lh * fw * out_w + 2.0 * lh * out_h * out_w)
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


def direct_cost(
    batch, c_in, c_out, taps, windows, out_h, out_w, in_h=None, in_w=None, full=None, stride=1, padding=0
) -> float:
    """Multiply-adds of the windowed direct path (padding taps excluded when the input
    size is given)."""
    if in_h is None:
        return float(batch * c_in * taps * c_out * out_h * out_w * sum(m * m for m in windows))
    per_pixel = sum(
        in_bounds_taps(in_h, out_h, m, full, stride, padding) * in_bounds_taps(in_w, out_w, m, full, stride, padding)
        for m in windows
    )
    return float(batch * c_in * taps * c_out * per_pixel)
