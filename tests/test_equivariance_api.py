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
from sesn.transforms import rescale, smooth_random_field

SCALES = [1.7, 2.45, 3.54, 5.1]


def _by_hand_th(layer, x, t, crop):
    """Delta of a T->H layer written out from its definition, independently of the library."""
    num = den = 0.0
    with torch.no_grad():
        y = layer(x)
        for i in range(len(SCALES) - t):
            a = SCALES[i] / SCALES[i + t]
            ref = rescale(y[:, :, i + t], a)[..., crop:-crop, crop:-crop]
            out = layer(rescale(x, a))[:, :, i][..., crop:-crop, crop:-crop]
            num += float((ref - out).pow(2).sum())
            den += float(ref.pow(2).sum())
    return num / den


def _by_hand_hh(layer, x, t, crop):
    num = den = 0.0
    with torch.no_grad():
        y = layer(x)
        moved = torch.zeros_like(x)
        for i in range(len(SCALES) - t):
            moved[:, :, i] = rescale(x[:, :, i + t], SCALES[i] / SCALES[i + t])
        z = layer(moved)
        for i in range(len(SCALES) - t):
            ref = rescale(y[:, :, i + t], SCALES[i] / SCALES[i + t])[..., crop:-crop, crop:-crop]
            num += float((ref - z[:, :, i][..., crop:-crop, crop:-crop]).pow(2).sum())
            den += float(ref.pow(2).sum())
    return num / den


def test_scale_equivariance_returns_numbers_per_pair():
    layer = SESConv_Z2_H(1, 2, 15, 7, SCALES, padding=7, basis_type="B", mult=1.5).double()
    x = smooth_random_field((1, 1, 48, 48), torch.Generator().manual_seed(0))
    r = scale_equivariance(layer, x, 2)
    assert isinstance(r, EquivarianceResult)
    assert set(r.per_pair) == {(0, 2), (1, 3)}
    assert math.isclose(r.factors[(0, 2)], 1.7 / 3.54)
    assert math.isclose(r.delta, r.numerator / r.denominator)
    assert math.isclose(r.delta, _by_hand_th(layer, x, 2, r.crop), rel_tol=1e-9)
    # a per-pair Delta is that pair's share: the overall Delta lies between the pairs' extremes
    assert min(r.per_pair.values()) <= r.delta <= max(r.per_pair.values())
    assert set(delta_vs_step(layer, x)) == {1, 2, 3}


def test_hh_measurement_and_bad_step():
    layer = SESConv_H_H(1, 2, 2, 15, 7, SCALES, padding=7).double()
    x = smooth_random_field((1, 1, 4, 40, 40), torch.Generator().manual_seed(0))
    r = scale_equivariance(layer, x, 1)
    assert math.isclose(r.delta, _by_hand_hh(layer, x, 1, r.crop), rel_tol=1e-9)
    # the wrong direction (rescale slice i+1 by sigma_{i+1}/sigma_i) is far worse: the measure sees steering
    assert r.delta < 0.1 * _by_hand_hh_wrong_direction(layer, x, r.crop)
    with pytest.raises(ValueError, match="scale step"):
        scale_equivariance(layer, x, 4)
    with pytest.raises(ValueError, match="4-D image or 5-D"):
        scale_equivariance(layer, x[0, 0], 1)


def _by_hand_hh_wrong_direction(layer, x, crop):
    with torch.no_grad():
        y = layer(x)
        moved = torch.zeros_like(x)
        for i in range(len(SCALES) - 1):
            moved[:, :, i] = rescale(x[:, :, i + 1], SCALES[i + 1] / SCALES[i])
        z = layer(moved)
        ref = torch.stack([rescale(y[:, :, i + 1], SCALES[i + 1] / SCALES[i]) for i in range(len(SCALES) - 1)], 2)
        ref, z = ref[..., crop:-crop, crop:-crop], z[:, :, :-1][..., crop:-crop, crop:-crop]
        return float((ref - z).pow(2).sum() / ref.pow(2).sum())


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
    with torch.no_grad():
        a, b = model(x), model(rescale(x, 0.8))
    assert math.isclose(invariance_error(model, x, 0.8), float((a - b).pow(2).sum() / a.pow(2).sum()), rel_tol=1e-12)
    assert invariance_error(model, x, 1.0) == 0.0


def test_scale_equivariance_refuses_outputs_of_the_wrong_shape_and_a_zero_reference():
    """Issue #43 item 5: an output whose batch, spatial size or scale count does not match is a
    ValueError naming the shapes (not a broadcast number), and an all-zero output is an error,
    not NaN (0/0)."""
    import torch

    from sesn.equivariance import scale_equivariance
    from sesn.transforms import smooth_random_field

    x = smooth_random_field((2, 1, 32, 32), torch.Generator().manual_seed(0))
    scales = [1.0, 1.5, 2.25]

    def lift(fn):
        class M(torch.nn.Module):
            def forward(self, t):
                return fn(t)

        return M()

    good = lift(lambda t: t.unsqueeze(2).expand(-1, -1, 3, -1, -1))
    assert scale_equivariance(good, x, 1, scales).delta >= 0
    bad = {
        "batch": lambda t: t[:1].unsqueeze(2).expand(-1, -1, 3, -1, -1),
        "spatial size": lambda t: t[..., :16, :16].unsqueeze(2).expand(-1, -1, 3, -1, -1),
        "scale": lambda t: t.unsqueeze(2).expand(-1, -1, 5, -1, -1),
        "rank": lambda t: t,
    }
    for fn in bad.values():
        with pytest.raises(ValueError, match="expected output"):
            scale_equivariance(lift(fn), x, 1, scales)
    with pytest.raises(ValueError, match="zero"):
        scale_equivariance(lift(lambda t: 0 * t.unsqueeze(2).expand(-1, -1, 3, -1, -1)), x, 1, scales)
