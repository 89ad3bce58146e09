"""Basis "W": basis "R" with its span re-weighted towards its sharper directions.

Basis R (:mod:`sesn.basis.optimized`) spans its smallest scale with smooth, strongly collinear
Hermite functions: with N_b = 49 functions on a 5- or 7-pixel window, a layer's random
initial kernels are dominated by the few smoothest directions of the span, and the sharper
ones (small singular values: docs/optimised-basis.md) start near zero. Basis W mixes R's
functions by one matrix, the same at every scale,

    W_s = c * U diag((sigma_i / sigma_0) ** -p) U^T R_s,    R_0 = U diag(sigma) V^T (thin SVD),

the singular vectors U of R's scale-0 functions (as rows), p = ``whiten`` (0: R itself;
1: a fully whitened span, every direction with equal weight), restricted to the directions
with sigma_i > 1e-9 sigma_0 (r of them), and c = sqrt(N_b / r). Every kernel a layer with
basis W can express, basis R can express (W_s = M R_s with one M), and at every scale it is
the same combination of R's functions, so each kernel's equivariance is R's; what changes
is the parametrisation: the initial kernels (iid weights) weigh the span's directions
differently, and so does gradient descent. docs/optimised-basis.md has the measurements.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from sesn.basis.optimized import optimized_basis
from sesn.basis.registry import W_DEFAULT_POWER
from sesn.basis.spec import BasisSpec


def mixing_matrix(scale0: np.ndarray, power: float) -> np.ndarray:
    """``[N_b, N_b]`` matrix M of the module docstring for scale-0 functions ``[N_b, m, m]``."""
    nb = scale0.shape[0]
    u, s, _ = np.linalg.svd(scale0.reshape(nb, -1), full_matrices=False)
    keep = s > 1e-9 * s[0]
    u, s = u[:, keep], s[keep]
    return (u * (s / s[0]) ** (-power)) @ u.T * np.sqrt(nb / keep.sum())


@functools.lru_cache(maxsize=64)
def whitened_basis(spec: BasisSpec) -> np.ndarray:
    """Basis W ``[N_b, S, k, k]`` (float64, read-only) of ``spec``: R's basis mixed by
    :func:`mixing_matrix` with power ``spec.whiten`` (default :data:`W_DEFAULT_POWER`)."""

    r = optimized_basis(dataclasses.replace(spec, basis_type="R", whiten=None))
    power = W_DEFAULT_POWER if spec.whiten is None else spec.whiten
    out = np.einsum("ij,jskl->iskl", mixing_matrix(r[:, 0], power), r)
    out.setflags(write=False)
    return out
