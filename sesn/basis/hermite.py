"""Hermite-Gaussian steerable bases "A" and "B" (docs/bases-and-layers.md), built in float64.

A 1-D function of order n at scale sigma is
``g_{n,sigma}(x) = exp(-x**2 / (2 sigma**2)) / sigma * He_n(x / sigma)`` with He_n the
probabilists' Hermite polynomial. The 2-D function for the order pair (n_y, n_x) is
``g_{n_x}(u) * g_{n_y}(v)``, u along the kernel's first spatial axis (height), v along
the second (width); pairs are enumerated row-major over an (max_order+1)**2 grid,
n_y slow and n_x fast. This is the order of the reference implementation, so weights
trained there index the same functions here.
"""

from __future__ import annotations

import functools

import numpy as np
from numpy.polynomial import hermite_e

from sesn.basis.spec import BasisSpec


def hermite_gaussian_1d(x: np.ndarray, order: int, scale: float) -> np.ndarray:
    """g_{order, scale}(x) = exp(-x^2 / 2 scale^2) / scale * He_order(x / scale)."""
    coeffs = np.zeros(order + 1)
    coeffs[order] = 1.0
    return np.exp(-(x**2) / (2.0 * scale**2)) / scale * hermite_e.hermeval(x / scale, coeffs)


def order_pairs(max_order: int, total_order_limit: int | None = None) -> list[tuple[int, int]]:
    """(n_y, n_x) pairs, n_y slow, n_x fast; optionally only n_x + n_y <= limit."""
    pairs = [(ny, nx) for ny in range(max_order + 1) for nx in range(max_order + 1)]
    if total_order_limit is not None:
        pairs = [(ny, nx) for ny, nx in pairs if nx + ny <= total_order_limit]
    return pairs


def _functions_on_window(size: int, terms: list[tuple[int, int, float]]) -> np.ndarray:
    """Sample 2-D functions (n_y, n_x, sigma) on the grid -(size//2)..size//2 -> [N, size, size]."""
    grid = np.arange(size, dtype=np.float64) - size // 2
    out = np.empty((len(terms), size, size))
    for i, (ny, nx, sigma) in enumerate(terms):
        gu = hermite_gaussian_1d(grid, nx, sigma)  # along height (first axis)
        gv = hermite_gaussian_1d(grid, ny, sigma)  # along width (second axis)
        out[i] = np.outer(gu, gv)
    return out


def _terms_for_scale(spec: BasisSpec, scale: float) -> list[tuple[int, int, float]]:
    if spec.basis_type == "A":
        return [(ny, nx, scale) for ny, nx in order_pairs(spec.effective_size - 1)]
    # basis "B": sub-scales scale / mult**j, each with all orders nx + ny <= max_order
    pairs = order_pairs(spec.max_order, spec.max_order)
    terms: list[tuple[int, int, float]] = []
    j = 0
    while len(terms) < spec.num_funcs:
        sub = scale / spec.mult**j
        terms.extend((ny, nx, sub) for ny, nx in pairs)
        j += 1
    return terms[: spec.num_funcs]


def unnormalised_basis(spec: BasisSpec) -> np.ndarray:
    """Basis before normalisation, ``[N_b, S, k, k]`` float64 (windows zero-padded to k)."""
    k = spec.kernel_size
    basis = np.zeros((spec.num_funcs, spec.num_scales, k, k))
    for s_idx, (scale, m) in enumerate(zip(spec.scales, spec.windows)):
        pad = (k - m) // 2
        basis[:, s_idx, pad : pad + m, pad : pad + m] = _functions_on_window(m, _terms_for_scale(spec, scale))
    return basis


def normalise_by_smallest_scale(basis: np.ndarray) -> np.ndarray:
    """Divide each function, at every scale, by its L2 norm at scale index 0."""
    norms = np.sqrt((basis[:, :1] ** 2).sum(axis=(2, 3), keepdims=True))
    if np.any(norms == 0):
        raise ValueError("a basis function vanishes at the smallest scale; cannot normalise")
    return basis / norms


@functools.lru_cache(maxsize=256)
def _cached_basis(spec: BasisSpec) -> np.ndarray:
    basis = normalise_by_smallest_scale(unnormalised_basis(spec))
    basis.setflags(write=False)
    return basis


def hermite_basis(spec: BasisSpec) -> np.ndarray:
    """Normalised Hermite basis ``[N_b, S, k, k]`` (float64, read-only, cached by spec)."""
    if spec.basis_type not in ("A", "B"):
        raise ValueError(f"hermite_basis builds types 'A' and 'B', got {spec.basis_type!r}")
    return _cached_basis(spec)


@functools.lru_cache(maxsize=256)
def separable_factors(spec: BasisSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Hermite basis as sums of 1-D factors, for the separable compute path.

    Functions are grouped by sub-scale (one group for "A"; sub-scales sigma/mult**j for
    "B"); group g holds the 1-D functions of orders 0..P-1 (P = effective_size for "A",
    max_order+1 for "B"). Returns

    * ``factors`` ``[S, G, P, k]`` float64: ``g_{p, sigma_i/mult**g}`` sampled on the window
      of scale i, zero-padded to k (the same table serves both axes);
    * ``pairs`` ``[N_b, 3]`` int64: function b is ``outer(factors[i, g, p_h], factors[i, g, p_w])``
      with (g, p_h, p_w) = pairs[b] (p_h = n_x along the height, p_w = n_y along the width);
    * ``scale`` ``[N_b]`` float64: 1 / (L2 norm of function b at scale index 0).

    so that ``hermite_basis(spec)[b, i] == scale[b] * outer(factors[i, g, p_h], factors[i, g, p_w])``.
    """
    if spec.basis_type not in ("A", "B"):
        raise ValueError(f"separable_factors: only bases 'A' and 'B' are separable, got {spec.basis_type!r}")
    k = spec.kernel_size
    if spec.basis_type == "A":
        orders = spec.effective_size
        subs = [1.0]
        pairs = [(0, nx, ny) for ny, nx in order_pairs(orders - 1)]
    else:
        orders = spec.max_order + 1
        per = order_pairs(spec.max_order, spec.max_order)
        pairs, j = [], 0
        while len(pairs) < spec.num_funcs:
            pairs.extend((j, nx, ny) for ny, nx in per)
            j += 1
        pairs = pairs[: spec.num_funcs]
        subs = [1.0 / spec.mult**g for g in range(j)]
    factors = np.zeros((spec.num_scales, len(subs), orders, k))
    for i, (scale, m) in enumerate(zip(spec.scales, spec.windows)):
        grid = np.arange(m, dtype=np.float64) - m // 2
        pad = (k - m) // 2
        for g, sub in enumerate(subs):
            for p in range(orders):
                factors[i, g, p, pad : pad + m] = hermite_gaussian_1d(grid, p, scale * sub)
    pairs_arr = np.asarray(pairs, dtype=np.int64)
    f0 = factors[0]
    norms = np.array([np.linalg.norm(f0[g, ph]) * np.linalg.norm(f0[g, pw]) for g, ph, pw in pairs])
    if np.any(norms == 0):
        raise ValueError("a basis function vanishes at the smallest scale; cannot normalise")
    for a in (factors, pairs_arr, norms):
        a.setflags(write=False)
    return factors, pairs_arr, 1.0 / norms
