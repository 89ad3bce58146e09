"""Filter bases: pure functions of a frozen :class:`BasisSpec` (no torch modules)."""

from __future__ import annotations

import numpy as np
import torch

from sesn.basis.hermite import hermite_basis, hermite_gaussian_1d, order_pairs
from sesn.basis.spec import BASIS_TYPES, BasisSpec, make_spec, paper_scales, window_size

__all__ = [
    "BASIS_TYPES",
    "BasisSpec",
    "basis_array",
    "basis_tensor",
    "hermite_basis",
    "hermite_gaussian_1d",
    "make_spec",
    "order_pairs",
    "paper_scales",
    "window_size",
]


def basis_array(spec: BasisSpec) -> np.ndarray:
    """The basis of ``spec`` as a read-only float64 array ``[N_b, S, k, k]``."""
    if spec.basis_type == "DISCO":
        from sesn.basis.disco import disco_basis

        return disco_basis(spec)
    if spec.basis_type in ("D", "R"):
        from sesn.basis.optimized import optimized_basis

        return optimized_basis(spec)
    return hermite_basis(spec)


def basis_tensor(spec: BasisSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The basis of ``spec`` as a fresh tensor ``[N_b, S, k, k]`` of ``dtype``."""
    return torch.tensor(np.array(basis_array(spec)), dtype=dtype)
