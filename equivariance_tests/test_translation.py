"""Exact: integer translations commute with every layer (docs/equivariance.md)."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.tolerances import EXACT
from sesn.equivariance import translation_equivariance
from sesn.nn import (
    ScaleBatchNorm,
    ScaleMaxPool2d,
    SESConv_H_H,
    SESConv_H_H_1x1,
    SESConv_Z2_H,
    SESMaxProjection,
    SESMeanProjection,
)
from sesn.testing import assert_equivariant

shifts = st.tuples(st.integers(-4, 4), st.integers(-4, 4))


def _rand(shape, seed, dtype):
    return torch.randn(*shape, generator=sst.generator(seed), dtype=torch.float64).to(dtype)


def _seeded(module, seed, dtype):
    torch.manual_seed(seed)
    module.reset_parameters() if hasattr(module, "reset_parameters") else None
    return module.to(dtype)


@sst.keyword_safe
@given(
    cfg=sst.steerable_configs(),
    dtype=sst.dtypes,
    shift=shifts,
    stride=st.sampled_from([1, 2]),
    seed=sst.seeds,
    cin=sst.channels,
    path=sst.paths,
)
def test_th_translation_exact(cfg, dtype, shift, stride, seed, cin, path):
    layer = _seeded(
        SESConv_Z2_H(cin, 3, padding=cfg.kernel_size // 2, stride=stride, bias=True, **cfg.kwargs()), seed, dtype
    )
    sst.on_path(layer, path)
    shift = (shift[0] * stride, shift[1] * stride)
    x = _rand((2, cin, 36, 36), seed, dtype)
    assert_equivariant(translation_equivariance(layer, x, shift, stride=stride), EXACT[dtype], "T->H translation")


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), dtype=sst.dtypes, shift=shifts, seed=sst.seeds, cin=sst.channels, path=sst.paths)
def test_hh_translation_exact(cfg, dtype, shift, seed, cin, path):
    layer = _seeded(SESConv_H_H(cin, 2, 1, padding=cfg.kernel_size // 2, bias=True, **cfg.kwargs()), seed, dtype)
    sst.on_path(layer, path)
    x = _rand((2, cin, len(cfg.scales), 36, 36), seed, dtype)
    assert_equivariant(translation_equivariance(layer, x, shift), EXACT[dtype], "H->H translation")


@sst.keyword_safe
@given(
    cfg=sst.steerable_configs(),
    dtype=sst.dtypes,
    shift=shifts,
    seed=sst.seeds,
    scale_size=st.integers(2, 3),
    path=sst.paths,
)
def test_hh_interscale_translation_exact(cfg, dtype, shift, seed, scale_size, path):
    layer = _seeded(SESConv_H_H(2, 2, scale_size, padding=cfg.kernel_size // 2, **cfg.kwargs()), seed, dtype)
    sst.on_path(layer, path)
    x = _rand((2, 2, len(cfg.scales), 36, 36), seed, dtype)
    assert_equivariant(translation_equivariance(layer, x, shift), EXACT[dtype], "interscale H->H translation")


@sst.keyword_safe
@given(dtype=sst.dtypes, shift=shifts, seed=sst.seeds, s=st.integers(1, 4), stride=st.sampled_from([1, 2]))
def test_hh_1x1_translation_exact(dtype, shift, seed, s, stride):
    layer = SESConv_H_H_1x1(3, 4, stride=stride, bias=True)
    torch.manual_seed(seed)
    torch.nn.init.normal_(layer.bias)
    layer = layer.to(dtype)
    shift = (shift[0] * stride, shift[1] * stride)
    x = _rand((2, 3, s, 20, 20), seed, dtype)
    assert_equivariant(translation_equivariance(layer, x, shift, stride=stride), EXACT[dtype], "1x1 H->H translation")


@sst.keyword_safe
@given(dtype=sst.dtypes, shift=shifts, seed=sst.seeds)
def test_hh_batchnorm_translation_exact(dtype, shift, seed):
    bn = ScaleBatchNorm(3).to(dtype)
    bn(_rand((4, 3, 3, 12, 12), seed + 1, dtype) * 3 + 1)  # populate running stats
    bn.eval()
    x = _rand((2, 3, 3, 20, 20), seed, dtype)
    assert_equivariant(translation_equivariance(bn, x, shift), EXACT[dtype], "scale batch norm translation")


@sst.keyword_safe
@given(dtype=sst.dtypes, shift=shifts, seed=sst.seeds)
def test_hh_pool_translation_exact(dtype, shift, seed):
    pool = ScaleMaxPool2d(2)
    shift = (2 * shift[0], 2 * shift[1])  # exact only for multiples of the pool stride
    x = _rand((2, 3, 3, 24, 24), seed, dtype)
    assert_equivariant(
        translation_equivariance(pool, x, shift, stride=2), EXACT[dtype], "scale-wise pooling translation"
    )


@sst.keyword_safe
@given(dtype=sst.dtypes, shift=shifts, seed=sst.seeds, proj=st.sampled_from([SESMaxProjection, SESMeanProjection]))
def test_proj_translation_exact(dtype, shift, seed, proj):
    x = _rand((2, 3, 4, 16, 16), seed, dtype)
    assert_equivariant(translation_equivariance(proj(), x, shift), EXACT[dtype], "projection translation")
