"""Filter bases: pure functions of a frozen :class:`BasisSpec` (no torch modules)."""

from __future__ import annotations

import numpy as np
import torch

from sesn.basis.hermite import hermite_basis, hermite_gaussian_1d, order_pairs
from sesn.basis.registry import BASES, BasisKind, basis_kind, measured_bases, register_basis, report_bases
from sesn.basis.spec import BasisSpec, make_spec, paper_scales, window_size

__all__ = [
    "BASES",
    "BasisKind",
    "BasisSpec",
    "basis_array",
    "basis_kind",
    "basis_tensor",
    "hermite_basis",
    "hermite_gaussian_1d",
    "make_spec",
    "measured_bases",
    "report_bases",
    "order_pairs",
    "paper_scales",
    "register_basis",
    "window_size",
]


def basis_array(spec: BasisSpec) -> np.ndarray:
    """The basis of ``spec`` as a read-only float64 array ``[N_b, S, k, k]``, from the builder
    its kind registered (:mod:`sesn.basis.registry`)."""
    basis = basis_kind(spec.basis_type).build(spec)
    want = (spec.num_funcs, spec.num_scales, spec.kernel_size, spec.kernel_size)
    if getattr(basis, "shape", None) != want:
        raise ValueError(
            f"basis {spec.basis_type!r} built an array of shape {getattr(basis, 'shape', None)}, expected {want} "
            "([N_b = effective_size**2, S, k, k])"
        )
    return basis


def basis_tensor(spec: BasisSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The basis of ``spec`` as a fresh tensor ``[N_b, S, k, k]`` of ``dtype``."""
    return torch.tensor(np.array(basis_array(spec)), dtype=dtype)
