"""Exact: how the H->H layer is built from scale slices (docs/bases-and-layers.md: output scale i of an H->H layer
is the sum over taps j of a conv of input scale i+j with tap j's kernel steered to sigma_i).

Under geometric scale grids the joint rescale + scale shift cannot see *which* input slice
a tap reads (reading i+j+1 instead of i+j commutes with the joint action), so the rescaling
properties alone do not pin the tap alignment down; these identities do, to round-off:

* scale_size 1: slice i of the H->H output is the T->H lift (same weights) of input slice i,
  at scale i;
* scale_size K: the output is the sum over taps j of scale_size-1 layers (tap j's weights)
  applied to the input shifted by j along the scale axis (zero past the largest scale).
"""

import torch
from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.tolerances import EXACT
from sesn.equivariance import relative_error
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.testing import assert_equivariant
from sesn.transforms import scale_shift


def _input(cfg, cin, seed, dtype):
    return sst.smooth_random_field((2, cin, len(cfg.scales), 32, 32), sst.generator(seed), blur=1.0, dtype=dtype)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, dtype=sst.dtypes, path=sst.paths)
def test_hh_slice_equals_lift_at_its_scale(cfg, cin, seed, dtype, path):
    torch.manual_seed(seed)
    pad = cfg.kernel_size // 2
    hh = sst.on_path(SESConv_H_H(cin, 3, 1, padding=pad, **cfg.kwargs()).to(dtype), path)
    lift = sst.on_path(SESConv_Z2_H(cin, 3, padding=pad, **cfg.kwargs()).to(dtype), path)
    with torch.no_grad():
        lift.weight.copy_(hh.weight[:, :, 0])
        x = _input(cfg, cin, seed, dtype)
        y = hh(x)
        for i in range(len(cfg.scales)):
            err = relative_error(lift(x[:, :, i])[:, :, i], y[:, :, i])
            assert_equivariant(err, EXACT[dtype], f"H->H scale slice {i} vs the lift of input slice {i} ({cfg})")


@sst.keyword_safe
@given(
    cfg=sst.steerable_configs(),
    cin=sst.channels,
    seed=sst.seeds,
    dtype=sst.dtypes,
    taps=st.integers(2, 3),
    path=sst.paths,
)
def test_hh_interscale_equals_sum_of_single_scale_taps(cfg, cin, seed, dtype, taps, path):
    torch.manual_seed(seed)
    pad = cfg.kernel_size // 2
    layer = sst.on_path(SESConv_H_H(cin, 3, taps, padding=pad, **cfg.kwargs()).to(dtype), path)
    single = sst.on_path(SESConv_H_H(cin, 3, 1, padding=pad, **cfg.kwargs()).to(dtype), path)
    with torch.no_grad():
        x = _input(cfg, cin, seed, dtype)
        expected = 0
        for j in range(taps):
            single.weight.copy_(layer.weight[:, :, j : j + 1])
            expected = expected + single(scale_shift(x, j))
        err = relative_error(expected, layer(x))
    assert_equivariant(err, EXACT[dtype], f"H->H with {taps} taps vs the sum of its taps on shifted inputs ({cfg})")
