"""Separable evaluation of the Hermite bases "A" and "B" (compute mode ``"separable"``).

Every basis function is ``scale[b] * outer(f_{g,p_h}, f_{g,p_w})`` at every scale
(:func:`sesn.basis.hermite.separable_factors`), so the response of an input plane to all
N_b functions at scale i is two 1-D passes:

1. along the height: the P 1-D functions of each group g (sub-scale) -> G*P planes;
2. along the width: each of those planes with the Q = P width functions of its group ->
   G*P*Q planes, of which the N_b (g, p_h, p_w) pairs of the basis are kept;

then one GEMM over (C_in [x taps] x N_b) for all scales and positions at once:
``y[b, o, i] = sum_{c, n} (w[o, c, n] * scale[n]) * resp[b, c, n, i]`` (the 1/norm of
each function is folded into the weights).

Both 1-D passes are matrix products with banded (Toeplitz) matrices that hold the padding,
the stride and the per-scale window, so any stride/padding the layers allow is exact.
Multiply-adds per output position and input channel: ``S * N_b * C_out`` in the GEMM (the
CNN's channel mixing times S) plus ``S * G * P * (H + Q * W)`` in the passes, instead of
``sum_i m_i**2 * C_out`` for the direct path.
"""

from __future__ import annotations

import torch

from sesn.basis.hermite import separable_factors

SEPARABLE_BASES = ("A", "B")
# eval without autograd: the batch is processed in chunks whose basis responses take at
# most this many bytes (they then stay in the last-level cache between the passes and the GEMM)
CHUNK_BYTES = 48 * 2**20


def supports(spec) -> bool:
    return spec.basis_type in SEPARABLE_BASES


def banded(factors: torch.Tensor, size: int, out: int, stride: int, padding: int) -> torch.Tensor:
    """``T[..., o, t] = factors[..., t - o * stride + padding]`` (0 outside the kernel):
    ``T @ x`` along an axis of length ``size`` is conv1d (cross-correlation) with the
    factor, stride and zero padding."""
    k = factors.shape[-1]
    o = torch.arange(out).view(-1, 1)
    t = torch.arange(size).view(1, -1)
    idx = t - o * stride + padding  # [out, size]
    valid = (idx >= 0) & (idx < k)
    mat = factors[..., idx.clamp(0, k - 1)]  # [..., out, size]
    return mat * valid.to(factors.dtype)


class SeparableTables:
    """Banded 1-D matrices and pair indices of one spec for one input size, dtype, device."""

    def __init__(self, spec, h: int, w: int, stride: int, padding: int, dtype, device):
        factors, pairs, scale = separable_factors(spec)
        f = torch.tensor(factors, dtype=torch.float64)  # [S, G, P, k]
        s, g, p, _ = f.shape
        self.ho = (h + 2 * padding - spec.kernel_size) // stride + 1
        self.wo = (w + 2 * padding - spec.kernel_size) // stride + 1
        self.scales, self.groups, self.orders = s, g, p
        th = banded(f, h, self.ho, stride, padding)  # [S, G, P, Ho, H]
        tw = banded(f, w, self.wo, stride, padding)  # [S, G, Q, Wo, W]
        self.rows = th.reshape(s, g * p * self.ho, h).to(dtype=dtype, device=device)  # [S, G*P*Ho, H]
        self.cols = (
            tw.permute(0, 1, 4, 2, 3).reshape(s, g, w, p * self.wo).to(dtype=dtype, device=device)
        )  # [S, G, W, Q*Wo]
        # function b is slot (g, p_h, p_w) of the G*P*Q responses
        self.select = torch.tensor((pairs[:, 0] * p + pairs[:, 1]) * p + pairs[:, 2], device=device)
        self.num_funcs = len(pairs)
        self.scale = torch.tensor(scale, dtype=dtype, device=device)


def responses(x: torch.Tensor, t: SeparableTables) -> torch.Tensor:
    """Basis responses of planes ``x`` ``[n, S_x, C', H, W]`` (S_x = 1: the same planes at
    every scale; S_x = S: planes i at scale i) -> ``[S, C' * N_b, n * Ho * Wo]``."""
    n, sx, c, h, w = x.shape
    s, g, p, ho, wo = t.scales, t.groups, t.orders, t.ho, t.wo
    xt = x.permute(1, 3, 2, 0, 4).reshape(sx, h, c * n * w)  # [S_x, H, C'*n*W]
    z = torch.matmul(t.rows, xt)  # height pass, S GEMMs: [S, G*P*Ho, C'*n*W]
    z = z.view(s, g, p * ho * c * n, w)
    r = torch.matmul(z, t.cols)  # width pass, S*G GEMMs: [S, G, P*Ho*C'*n, Q*Wo]
    r = r.view(s, g, p, ho, c, n, p, wo).permute(0, 4, 1, 2, 6, 5, 3, 7)  # [S, C', G, P, Q, n, Ho, Wo]
    r = r.reshape(s, c, g * p * p, n * ho * wo)
    return r.index_select(2, t.select).view(s, c * t.num_funcs, n * ho * wo)


def separable_conv(planes: torch.Tensor, weight: torch.Tensor, t: SeparableTables) -> torch.Tensor:
    """``planes`` ``[B, S_x, C', H, W]`` (C' = C_in, or C_in * taps tap-minor), ``weight``
    ``[C_out, C', N_b]`` already multiplied by ``t.scale`` -> ``[B, C_out, S, Ho, Wo]``."""
    batch, _, c, _, _ = planes.shape
    c_out = weight.shape[0]
    wmat = weight.reshape(c_out, -1)
    if torch.is_grad_enabled() and (planes.requires_grad or weight.requires_grad):
        chunk = batch
    else:
        item_bytes = 2 * c * t.groups * t.orders**2 * t.scales * t.ho * t.wo * planes.element_size()
        chunk = max(1, min(batch, CHUNK_BYTES // max(item_bytes, 1)))
    outs = []
    for start in range(0, batch, chunk):
        part = planes[start : start + chunk]
        r = responses(part, t)  # [S, C'*N_b, n*Ho*Wo]
        y = torch.matmul(wmat, r)  # one GEMM per scale: [S, C_out, n*Ho*Wo]
        outs.append(y.view(t.scales, c_out, part.shape[0], t.ho, t.wo).permute(2, 1, 0, 3, 4))
    return outs[0] if len(outs) == 1 else torch.cat(outs, 0)


def separable_cost(batch, c_in, c_out, taps, spec, h, w, stride, padding) -> float:
    """Multiply-adds of the separable path (GEMM plus both banded passes, as computed)."""
    if not supports(spec):
        return float("inf")
    factors, pairs, _ = separable_factors(spec)
    s, g, p, k = factors.shape
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    planes = batch * c_in * taps
    passes = planes * s * (g * p * ho * h * w + g * p * ho * w * p * wo)
    gemm = batch * c_out * c_in * taps * len(pairs) * s * ho * wo
    return float(passes + gemm)
