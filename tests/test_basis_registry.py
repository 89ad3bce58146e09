"""Adding a basis = one builder + one registration (sesn.basis.registry): a toy basis joins
the layers, the model helpers and the dispatch without touching any other file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sesn.basis import BasisKind, BasisSpec, basis_array, basis_kind, measured_bases, register_basis
from sesn.basis.registry import unregister_basis


def _toy(spec: BasisSpec) -> np.ndarray:
    """Toy basis: Hermite A's functions with the sign of the odd orders flipped."""
    a = basis_array(BasisSpec(spec.kernel_size, spec.effective_size, spec.scales, "A"))
    out = a.copy()
    out[1::2] *= -1
    out.setflags(write=False)
    return out


@pytest.fixture
def toy():
    kind = register_basis(BasisKind("TOY", _toy, "Hermite A, odd functions negated"))
    yield kind
    unregister_basis("TOY")


def test_a_registered_basis_builds_layers_and_models(toy):
    from sesn.models.mnist_configs import MNIST_SES_CONFIGS, layer_kwargs
    from sesn.nn import SESConv_H_H, SESConv_Z2_H

    kw = layer_kwargs(MNIST_SES_CONFIGS["mnist_ses_scalar_28"], "toy")  # names are upper-cased
    assert kw["basis_type"] == "toy" and "mult" not in kw  # TOY reads no spec arguments: B's mult dropped
    lift = SESConv_Z2_H(1, 3, **kw)
    a = basis_array(BasisSpec(15, 7, lift.scales, "A"))
    assert np.array_equal(lift.basis.double().numpy()[1], -a[1].astype(np.float32))
    x = torch.randn(2, 1, 28, 28)
    y = SESConv_H_H(3, 2, 1, **kw)(lift(x))
    assert y.shape == (2, 2, 4, 28, 28)
    assert not lift.supports_mode("separable")  # no 1-D factors declared
    assert "TOY" not in measured_bases()


def test_a_basis_refuses_arguments_it_does_not_read(toy):
    with pytest.raises(ValueError, match="span_sigma applies to basis 'R' or 'W' only, not 'TOY'"):
        BasisSpec(15, 7, (1.0, 2.0), "TOY", span_sigma=2.0)
    with pytest.raises(ValueError, match="unknown spec arguments"):
        BasisKind("BAD", _toy, "x", arguments=("sigma",))


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="already registered"):
        register_basis(BasisKind("A", _toy, "again"))
    with pytest.raises(ValueError, match="basis_type must be one of .*'A'.*got 'Q'"):
        basis_kind("Q")
    register_basis(BasisKind("WRONGSHAPE", lambda spec: np.zeros((2, 2)), "a broken builder"))
    try:
        with pytest.raises(ValueError, match="basis 'WRONGSHAPE' built an array of shape"):
            basis_array(BasisSpec(7, 3, (1.0, 1.5), "WRONGSHAPE"))
    finally:
        unregister_basis("WRONGSHAPE")


def test_builtin_kinds_declare_what_the_rest_of_the_package_reads():
    assert measured_bases() == "ABDR"
    assert [n for n, k in __import__("sesn.basis", fromlist=["BASES"]).BASES.items() if k.separable] == ["A", "B"]
    assert basis_kind("DISCO").configurations["mnist"]["scales"] == (1.0, 1.26, 1.59, 2.0)
    assert set(basis_kind("R").arguments) == {"mult", "max_order", "span_sigma"}
