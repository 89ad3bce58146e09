"""Adding a basis = one builder + one registration (sesn.basis.registry): a toy basis joins
the layers, the model helpers and the dispatch without touching any other file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sesn.basis import BasisKind, BasisSpec, basis_array, basis_kind, measured_bases, register_basis, report_bases
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


def test_a_registered_basis_shows_up_in_every_report(toy):
    """The reports loop over the registry (report_bases): the toy basis gets rows, named by
    its registration and carrying its kind in a ``basis`` / ``basis_kind`` column, in the
    equivariance report's main table, methods section, DISCO comparison and stacks, and in the
    methods report; DISCO's published basis only at its own scales."""
    from types import SimpleNamespace

    from sesn.models.mnist_configs import MNIST_SES_CONFIGS
    from sesn.report import equivariance, methods
    from sesn.transforms import smooth_random_field

    paper = MNIST_SES_CONFIGS["mnist_ses_scalar_28"]
    disco = SimpleNamespace(max_order=4, span_sigma=None, **equivariance.DISCO_CONFIG)
    assert [k.name for k in report_bases(paper)] == ["A", "B", "D", "R", "W", "TOY"]
    assert [k.name for k in report_bases(disco)] == ["A", "B", "D", "R", "W", "DISCO", "TOY"]
    stacks = equivariance.stack_bases()
    for rows in stacks.values():
        assert rows["basis TOY"][1:] == ("TOY", "")  # the default label: "basis <name>"
    args = SimpleNamespace(seed=0, batch=1, size=32, blur=1.5, channels=2, configs=["mnist_ses_scalar_28"])
    df, _ = equivariance.measure(args)
    assert set(df[df.basis == "TOY"].layer) == {"T->H", "H->H (scale_size 1)", "H->H (scale_size 2)"}
    bdf, _ = equivariance.measure_baselines(args)
    assert set(bdf[bdf.basis == "TOY"].method) == {"SESN T->H basis TOY"}
    ddf, _, _ = equivariance.measure_disco(args)
    assert set(ddf[ddf.basis_kind == "TOY"].basis) == {"basis TOY"}
    # the toy spans what Hermite A spans (other random filters): a Delta of A's order
    a, t = (ddf[(ddf.basis_kind == b) & (ddf.layer == "T->H")].delta.to_numpy() for b in ("A", "TOY"))
    assert np.all((t > a / 3) & (t < 3 * a)), (a, t)
    margs = SimpleNamespace(config="mnist_ses_scalar_28", depth=1, channels=2, seed=0)
    x = smooth_random_field((1, 1, 32, 32), torch.Generator().manual_seed(0), blur=1.5)
    rows, pairs = [], []
    methods.measure(margs, x, "fields", rows, pairs)
    assert {r["method"] for r in rows if r["basis"] == "TOY"} == {"SESN basis TOY"}
    assert {r["basis"] for r in rows if r["method"] == "CNN"} == {""}
