"""Exact anchors: the Hermite bases rebuilt from their analytic definition, independently of
the library (SciPy's probabilists' Hermite polynomials, not the library's NumPy ones).

At every scale sigma_i the sampled function of basis "A" is

    psi_b(u, v; sigma_i) = N_b * sigma_i**-2 * He_{n_x}(u / sigma_i) He_{n_y}(v / sigma_i)
                           * exp(-(u**2 + v**2) / (2 sigma_i**2))

on the scale's centred window (zero outside), with N_b one over the function's L2 norm at
sigma_0; basis "B" uses the sub-scales sigma_i / mult**j (orders n_x + n_y <= max_order,
repeated per sub-scale until N_b functions). The checks compare at 1e-12 relative to the
largest value, in float64: a sigma error of 1 % at any scale changes the samples by about
2 % of their size, so no tolerance decides.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import eval_hermitenorm

EXACT = 1e-12


def _terms(cfg, max_order: int = 4) -> list[tuple[int, int, int]]:
    """(n_x, n_y, sub-scale index j) of each basis function, in the reference's order:
    (n_y, n_x) row-major with n_y slow."""
    n_funcs = cfg.effective_size**2
    if cfg.basis_type == "A":
        o = cfg.effective_size
        return [(nx, ny, 0) for ny in range(o) for nx in range(o)]
    per = [(nx, ny) for ny in range(max_order + 1) for nx in range(max_order + 1) if nx + ny <= max_order]
    terms, j = [], 0
    while len(terms) < n_funcs:
        terms += [(nx, ny, j) for nx, ny in per]
        j += 1
    return terms[:n_funcs]


def analytic_basis(cfg, windows) -> np.ndarray:
    """The definition above, ``[N_b, S, k, k]`` float64."""
    k = cfg.kernel_size
    terms = _terms(cfg)
    out = np.zeros((len(terms), len(cfg.scales), k, k))
    for i, (sigma, m) in enumerate(zip(cfg.scales, windows)):
        grid = np.arange(m, dtype=np.float64) - m // 2
        a = (k - m) // 2
        for b, (nx, ny, j) in enumerate(terms):
            s = sigma / (cfg.mult**j if cfg.basis_type == "B" else 1.0)
            gu = eval_hermitenorm(nx, grid / s) * np.exp(-(grid**2) / (2 * s**2))
            gv = eval_hermitenorm(ny, grid / s) * np.exp(-(grid**2) / (2 * s**2))
            out[b, i, a : a + m, a : a + m] = np.outer(gu, gv) / s**2
    norms = np.sqrt((out[:, :1] ** 2).sum(axis=(2, 3), keepdims=True))
    return out / norms


def check_basis_is_analytic(layer_basis: torch.Tensor, cfg, windows) -> None:
    """``layer_basis`` ``[N_b, S, k, k]`` equals :func:`analytic_basis` at EXACT (relative to its
    largest value), scale by scale; the message names the scales that differ."""
    __tracebackhide__ = True
    ours = layer_basis.detach().double().cpu().numpy()
    ref = analytic_basis(cfg, windows)
    assert ours.shape == ref.shape, f"{cfg.key}: basis shape {ours.shape}, definition {ref.shape}"
    err = np.abs(ours - ref).max(axis=(0, 2, 3)) / np.abs(ref).max()
    bad = {i: f"{e:.2e}" for i, e in enumerate(err) if not e <= EXACT}
    assert not bad, f"{cfg.key}: basis differs from the definition at scale index: relative error {bad}"


def check_separable_is_analytic(cfg) -> None:
    """The separable path's 1-D tables (``sesn.basis.hermite.separable_factors``), multiplied
    out into 2-D functions with their normalisation, equal the analytic basis."""
    from sesn.basis.hermite import separable_factors

    factors, pairs, scale = separable_factors(cfg.spec)
    along_h = factors[:, pairs[:, 0], pairs[:, 1]]  # [S, N_b, k]
    along_w = factors[:, pairs[:, 0], pairs[:, 2]]
    rebuilt = np.einsum("b,sbk,sbl->bskl", scale, along_h, along_w)
    check_basis_is_analytic(torch.from_numpy(rebuilt), cfg, cfg.spec.windows)
