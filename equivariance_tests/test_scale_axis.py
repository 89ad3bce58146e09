"""Exact: shifts along the scale axis commute with the layers that treat every scale alike;
projections over scales are invariant to them. The steerable convolutions are *not*
pure-shift equivariant (docs/equivariance.md): that is tested too."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.cases import (
    HypothesisDraws,
    check_batchnorm,
    check_conv_1x1,
    check_pooling,
    check_projection,
    draw_scalewise_case,
)
from equivariance_tests.tolerances import EXACT
from sesn.equivariance import scale_shift_equivariance, scale_shift_invariance
from sesn.nn import (
    ScaleAvgPool2d,
    ScaleBatchNorm,
    ScaleMaxPool2d,
    SESConv_H_H,
    SESConv_H_H_1x1,
    SESMaxProjection,
    SESMeanProjection,
)
from sesn.testing import assert_equivariant

steps = st.integers(-2, 2)


def _rand(shape, seed, dtype):
    return torch.randn(*shape, generator=sst.generator(seed), dtype=torch.float64).to(dtype)


@sst.keyword_safe
@given(dtype=sst.dtypes, t=steps, seed=sst.seeds, s=st.integers(3, 5))
def test_hh_1x1_scale_shift_exact(dtype, t, seed, s):
    torch.manual_seed(seed)
    layer = SESConv_H_H_1x1(3, 4, bias=True)
    torch.nn.init.normal_(layer.bias)
    layer = layer.to(dtype)
    x = _rand((2, 3, s, 10, 10), seed, dtype)
    assert_equivariant(scale_shift_equivariance(layer, x, t), EXACT[dtype], "1x1 H->H scale shift")


@sst.keyword_safe
@given(dtype=sst.dtypes, t=steps, seed=sst.seeds)
def test_hh_batchnorm_scale_shift_exact(dtype, t, seed):
    bn = ScaleBatchNorm(3).to(dtype)
    bn(_rand((4, 3, 4, 8, 8), seed + 1, dtype) * 2 - 1)
    bn.eval()
    x = _rand((2, 3, 4, 10, 10), seed, dtype)
    assert_equivariant(scale_shift_equivariance(bn, x, t), EXACT[dtype], "scale batch norm (eval) scale shift")


@sst.keyword_safe
@given(dtype=sst.dtypes, t=steps, seed=sst.seeds, pool=st.sampled_from([ScaleMaxPool2d, ScaleAvgPool2d]))
def test_hh_pool_scale_shift_exact(dtype, t, seed, pool):
    x = _rand((2, 3, 4, 12, 12), seed, dtype)
    assert_equivariant(scale_shift_equivariance(pool(2), x, t), EXACT[dtype], "scale-wise pooling scale shift")


@sst.keyword_safe
@given(
    dtype=sst.dtypes, t=st.integers(1, 3), seed=sst.seeds, proj=st.sampled_from([SESMaxProjection, SESMeanProjection])
)
def test_proj_scale_shift_invariance_exact(dtype, t, seed, proj):
    x = _rand((2, 3, 4, 8, 8), seed, dtype)
    assert_equivariant(scale_shift_invariance(proj(), x, t), EXACT[dtype], "projection under cyclic scale shift")


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), seed=sst.seeds)
def test_hh_pure_scale_shift_is_not_a_symmetry(cfg, seed):
    """A steerable H->H layer uses the basis at sigma_i for scale i, so shifting the input
    along the scale axis *without* rescaling it must change the output measurably."""
    torch.manual_seed(seed)
    layer = SESConv_H_H(2, 2, 1, padding=cfg.kernel_size // 2, **cfg.kwargs()).double()
    x = sst.smooth_random_field((2, 2, len(cfg.scales), 40, 40), sst.generator(seed), blur=1.0)
    err = scale_shift_equivariance(layer, x, 1)
    assert err > 1e-3, f"pure scale shift unexpectedly commutes: {err:.3e}"


# --- definitions (exact anchors of the layers that treat every scale alike) ----------------


@sst.keyword_safe
@given(data=st.data())
def test_hh_batchnorm_train_mode_is_its_definition(data):
    """Statistics per channel over batch, scales and positions (not per scale), running
    statistics updated by momentum; eval mode commutes with scale shifts."""
    check_batchnorm(draw_scalewise_case(HypothesisDraws(data)))


@sst.keyword_safe
@given(data=st.data())
def test_hh_pool_is_2d_pooling_per_scale(data):
    check_pooling(draw_scalewise_case(HypothesisDraws(data)))


@sst.keyword_safe
@given(data=st.data())
def test_hh_1x1_is_a_1x1_conv_per_scale(data):
    check_conv_1x1(draw_scalewise_case(HypothesisDraws(data)))


@sst.keyword_safe
@given(data=st.data())
def test_proj_is_a_reduction_over_scales(data):
    check_projection(draw_scalewise_case(HypothesisDraws(data)))
