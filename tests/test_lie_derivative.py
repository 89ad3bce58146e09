"""The scale Lie derivative (sesn.lie_derivative): the generator is the derivative of this
package's rescale at t = 0; maps that commute with rescaling exactly have a zero Lie
derivative; a well-sampled steerable lift has a small one only when the scale-axis term is in
the generator (dropping or flipping it is seen); the per-layer contributions add up to the
total; forward mode and the finite-difference fallback agree; bad input is an error."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import sesn.lie_derivative as L
from sesn.equivariance import scale_lie_derivative
from sesn.models.method_layers import METHOD_LAYERS, ses_stack
from sesn.models.mnist_configs import MNIST_SES_CONFIGS
from sesn.nn import SESConv_Z2_H
from sesn.transforms import rescale, smooth_random_field


@pytest.fixture(scope="module")
def x():
    return smooth_random_field((2, 1, 48, 48), torch.Generator().manual_seed(0), blur=2.0)


def _smooth_lift():
    """Hermite order 0 at well-sampled scales on an untruncating kernel: close to the continuous ideal."""
    torch.manual_seed(0)
    return SESConv_Z2_H(1, 4, 41, 1, [3.0, 3.6, 4.32], padding=20, basis_type="A").double().eval()


def test_the_generator_is_the_derivative_of_the_rescale(x):
    h = 1e-5
    fd = (rescale(x, math.exp(h)) - x) / h  # zoom in: the interpolation kernel itself (no antialiasing)
    g = L.spatial_generator(x)
    c = (slice(None), slice(None), slice(6, -6), slice(6, -6))
    assert float((fd - g)[c].norm() / g[c].norm()) < 5e-3


def test_maps_that_commute_with_rescaling_have_zero_lie_derivative(x):
    torch.manual_seed(0)
    pointwise = nn.Conv2d(1, 3, 1).double()
    assert scale_lie_derivative(pointwise, x).lee < 1e-24

    class Copy(nn.Module):  # T -> H: the same image at every scale (constant along the scale axis)
        scales = [1.0, 1.5, 2.25]

        def forward(self, t):
            return t.unsqueeze(2).expand(-1, -1, 3, -1, -1)

    assert scale_lie_derivative(Copy(), x).lee < 1e-24


def test_a_smooth_lift_is_infinitesimally_equivariant_only_with_the_scale_term(x, monkeypatch):
    lift = _smooth_lift()
    good = scale_lie_derivative(lift, x, scale_derivative="layers").lee
    plain = scale_lie_derivative(nn.Conv2d(1, 4, 7, padding=3).double(), x).lee
    assert good < 1e-2 < plain
    true = L.continuous_scale_derivative
    monkeypatch.setattr(L, "continuous_scale_derivative", lambda m, t: -true(m, t))  # planted: sign flipped
    assert scale_lie_derivative(lift, x, scale_derivative="layers").lee > 30 * good
    monkeypatch.setattr(L, "continuous_scale_derivative", lambda m, t: 0 * true(m, t))  # planted: term dropped
    assert scale_lie_derivative(lift, x, scale_derivative="layers").lee > 10 * good


def test_per_layer_contributions_add_up(x):
    cfg = MNIST_SES_CONFIGS["mnist_ses_scalar_28"]
    torch.manual_seed(0)
    for model in (ses_stack(2, 3, cfg, "A").double().eval(), METHOD_LAYERS["CNN"].stack(3, 3).double().eval()):
        r = scale_lie_derivative(model, x, layers=True)
        names = [n for n, _ in model.named_children()]
        assert list(r.per_layer) == [*names, "(rest)"]
        # exact with forward mode; the steerable layers' custom autograd functions fall back to
        # central differences (relative error ~1e-6 in float64)
        bound = 1e-12 if r.method == "forward-mode AD" else 1e-4
        assert r.per_layer["(rest)"] < bound * max(r.per_layer.values()), r
        assert r.lee > 0


def test_forward_mode_and_the_finite_difference_fallback_agree(x, monkeypatch):
    torch.manual_seed(0)
    model = METHOD_LAYERS["CNN"].stack(2, 3).double().eval()
    ad = scale_lie_derivative(model, x)
    assert ad.method == "forward-mode AD"

    def no_forward_mode(*a, **k):
        raise NotImplementedError("forward AD not implemented for this op")

    monkeypatch.setattr(torch.func, "jvp", no_forward_mode)
    fd = scale_lie_derivative(model, x)
    assert fd.method == "central difference" and abs(fd.lee - ad.lee) <= 1e-6 * ad.lee


def test_bad_input_is_an_error(x):
    with pytest.raises(ValueError, match="3-D tensor"):
        L.scale_generator(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="needs its scales"):
        L.scale_generator(torch.zeros(1, 1, 3, 8, 8))
    with pytest.raises(ValueError, match="3 scales given"):
        L.scale_axis_derivative(torch.zeros(1, 1, 4, 8, 8), [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="zero"):
        scale_lie_derivative(nn.Conv2d(1, 1, 3, bias=False).double().requires_grad_(False).apply(_zero), x)
    with pytest.raises(ValueError, match="'grid' or 'layers'"):
        scale_lie_derivative(_smooth_lift(), x, scale_derivative="exact")
    with pytest.raises(ValueError, match="steerable layers"):
        L.continuous_scale_derivative(nn.Conv2d(1, 1, 3).double(), x)


def _zero(m):
    if isinstance(m, nn.Conv2d):
        m.weight.zero_()
