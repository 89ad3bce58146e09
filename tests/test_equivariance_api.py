import math

import pytest
import torch
from torch import nn

from sesn.equivariance import (
    EquivarianceResult,
    delta_vs_step,
    invariance_error,
    plain_conv_baseline,
    relative_error,
    rescale_equivariance,
    scale_equivariance,
)
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.transforms import smooth_random_field

SCALES = [1.7, 2.45, 3.54, 5.1]


def test_scale_equivariance_returns_numbers_per_pair():
    layer = SESConv_Z2_H(1, 2, 15, 7, SCALES, padding=7, basis_type="B", mult=1.5).double()
    x = smooth_random_field((1, 1, 48, 48), torch.Generator().manual_seed(0))
    r = scale_equivariance(layer, x, 2)
    assert isinstance(r, EquivarianceResult)
    assert set(r.per_pair) == {(0, 2), (1, 3)}
    assert math.isclose(r.factors[(0, 2)], 1.7 / 3.54)
    assert 0 < r.delta < 1 and math.isclose(r.delta, r.numerator / r.denominator)
    assert set(delta_vs_step(layer, x)) == {1, 2, 3}


def test_hh_measurement_and_bad_step():
    layer = SESConv_H_H(1, 2, 2, 15, 7, SCALES, padding=7).double()
    x = smooth_random_field((1, 1, 4, 40, 40), torch.Generator().manual_seed(0))
    assert 0 < scale_equivariance(layer, x, 1).delta < 1
    with pytest.raises(ValueError, match="scale step"):
        scale_equivariance(layer, x, 4)
    with pytest.raises(ValueError, match="4-D image or 5-D"):
        scale_equivariance(layer, x[0, 0], 1)


def test_identity_is_perfectly_rescale_equivariant_and_conv_is_not():
    x = smooth_random_field((1, 1, 48, 48), torch.Generator().manual_seed(0))
    assert rescale_equivariance(nn.Identity(), x, 0.7) == 0.0
    conv = nn.Conv2d(1, 2, 7, padding=3).double()
    assert rescale_equivariance(conv, x, 0.7) > 1e-2


def test_plain_conv_baseline_same_pairs():
    layer = SESConv_Z2_H(1, 2, 15, 7, SCALES, padding=7).double()
    x = smooth_random_field((1, 1, 48, 48), torch.Generator().manual_seed(0))
    base = plain_conv_baseline(layer, x, 1, generator=torch.Generator().manual_seed(1))
    assert set(base.per_pair) == {(0, 1), (1, 2), (2, 3)}
    assert base.delta > 10 * scale_equivariance(layer, x, 1).delta


def test_relative_error_and_invariance():
    a = torch.ones(2, 3)
    assert relative_error(a, a) == 0.0
    assert relative_error(a, 2 * a) == 1.0
    with pytest.raises(ValueError, match="compare"):
        relative_error(a, torch.ones(3, 2))
    model = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 3)).double()
    x = smooth_random_field((2, 1, 16, 16), torch.Generator().manual_seed(0))
    assert invariance_error(model, x, 0.8) > 0
