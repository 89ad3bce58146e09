"""The optimised bases "D" and "R" (sesn.basis.optimized) pass the same properties as the
Hermite bases, with tolerances measured per paper configuration, kind, step, dtype and
scale pair (rows ``<paper model>/D`` and ``<paper model>/R`` of ``rescale_tolerances.csv``)."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.checks import check_rescale_case
from equivariance_tests.tolerances import EXACT
from sesn.equivariance import translation_equivariance
from sesn.models.mnist_configs import layer_kwargs
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.testing import assert_equivariant


def _layer(kind, name, seed, basis="D"):
    cfg = sst.paper_config(name, basis)
    torch.manual_seed(seed)
    kw = layer_kwargs(cfg, basis)
    if kind == "th":
        return SESConv_Z2_H(2, 2, **kw).double(), cfg
    return SESConv_H_H(2, 2, 1 if kind == "hh" else 2, **kw).double(), cfg


def _check_translation(basis, name, seed, dtype):
    layer, _ = _layer("th", name, seed, basis)
    layer = layer.to(dtype)
    x = torch.randn(2, 2, 36, 36, generator=sst.generator(seed), dtype=torch.float64).to(dtype)
    assert_equivariant(translation_equivariance(layer, x, (3, -2)), EXACT[dtype], f"basis {basis} translation")


def _check_integer_ratio(basis_kwargs, seed, dtype, d, n):
    """Decimating the input by d maps output scale 2 (sigma = d sigma_0) onto scale 0 exactly."""
    scales = [1.0, 1.4, float(d)] if d == 2 else [1.0, 1.7, 3.0]
    torch.manual_seed(seed)
    layer = SESConv_Z2_H(1, 3, 15, 5, scales, padding=7, **basis_kwargs).to(dtype)
    x = torch.randn(2, 1, n, n, generator=sst.generator(seed), dtype=torch.float64).to(dtype)
    with torch.no_grad():
        full = layer(x)[:, :, 2, ::d, ::d]
        small = layer(x[..., ::d, ::d])[:, :, 0]
    err = float((full - small).double().pow(2).sum() / full.double().pow(2).sum())
    assert_equivariant(err, EXACT[dtype], f"decimation by {d} vs dilated basis ({basis_kwargs})")


@sst.keyword_safe
@given(data=st.data())
def test_th_optimized_basis_rescale(data):
    check_rescale_case("th", "paper", data, bases="D")


@sst.keyword_safe
@given(data=st.data())
def test_hh_optimized_basis_rescale(data):
    check_rescale_case("hh", "paper", data, bases="D")


@sst.keyword_safe
@given(data=st.data())
def test_hh_interscale_optimized_basis_rescale(data):
    check_rescale_case("hh_interscale", "paper", data, bases="D")


@sst.keyword_safe
@given(name=sst.paper_config_names, seed=sst.seeds, dtype=sst.dtypes)
def test_th_optimized_basis_translation_exact(name, seed, dtype):
    _check_translation("D", name, seed, dtype)


@sst.keyword_safe
@given(seed=sst.seeds, dtype=sst.dtypes, d=st.sampled_from([2, 3]), n=st.sampled_from([33, 40]))
def test_th_optimized_basis_integer_ratio_exact(seed, dtype, d, n):
    """With dilate_integer=True, the functions at sigma_j = d * sigma_0 are the scale-0 ones
    dilated by d, so decimating the input by d maps output scale j onto scale 0 exactly:
    Phi(x[::d, ::d])[0] == Phi(x)[j][::d, ::d] (to round-off, any input)."""
    _check_integer_ratio(dict(basis_type="D", dilate_integer=True), seed, dtype, d, n)


# --- basis "R" (smooth Hermite-B span, rectified fit; always dilated at integer ratios) -------


@sst.keyword_safe
@given(data=st.data())
def test_th_basis_r_rescale(data):
    check_rescale_case("th", "paper", data, bases="R")


@sst.keyword_safe
@given(data=st.data())
def test_hh_basis_r_rescale(data):
    check_rescale_case("hh", "paper", data, bases="R")


@sst.keyword_safe
@given(data=st.data())
def test_hh_interscale_basis_r_rescale(data):
    check_rescale_case("hh_interscale", "paper", data, bases="R")


@sst.keyword_safe
@given(name=sst.paper_config_names, seed=sst.seeds, dtype=sst.dtypes)
def test_th_basis_r_translation_exact(name, seed, dtype):
    _check_translation("R", name, seed, dtype)


@sst.keyword_safe
@given(seed=sst.seeds, dtype=sst.dtypes, d=st.sampled_from([2, 3]), n=st.sampled_from([33, 40]))
def test_th_basis_r_integer_ratio_exact(seed, dtype, d, n):
    """Basis R dilates at integer ratios without being asked: decimating the input by d maps
    output scale j (sigma_j = d sigma_0) onto scale 0 exactly, on any input."""
    _check_integer_ratio(dict(basis_type="R", mult=1.5), seed, dtype, d, n)
