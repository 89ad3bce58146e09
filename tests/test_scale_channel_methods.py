"""The later scale-generalization methods: conv3d, spatial transformer, Gaussian derivative
layers, scale-channel pooling and foveated scale channels, each checked against its
definition (docs/scale-generalization.md)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sesn.baselines.conv3d import RescaledKernelLift, ScaleConv3d
from sesn.baselines.foveated import FoveatedScaleChannels, centre
from sesn.baselines.gaussian_derivative import (
    GaussDerConv,
    GaussDerLift,
    derivative_orders,
    difference,
    smoothing_matrix,
)
from sesn.baselines.pixel_pool import PixelPoolConv2d
from sesn.baselines.scale_channels import ScaleChannelPool
from sesn.baselines.stn import SpatialTransformer


def test_conv3d_lift_holds_the_pixel_pools_responses():
    torch.manual_seed(0)
    pool = PixelPoolConv2d(2, 3, 7, (7, 9, 13))
    lift = RescaledKernelLift(2, 3, 7, (7, 9, 13))
    lift.load_state_dict(pool.state_dict())
    x = torch.randn(2, 2, 20, 20)
    y = lift(x)
    assert y.shape == (2, 3, 3, 20, 20) == lift.evaluate_output_shape(x.shape)
    torch.testing.assert_close(y.amax(2), pool(x))
    conv = ScaleConv3d(3, 4, 7, 3)
    assert conv(y).shape == (2, 4, 3, 20, 20)
    with pytest.raises(ValueError, match="rank 5"):
        conv(x)


def test_spatial_transformer_starts_as_the_identity():
    torch.manual_seed(0)
    stn = SpatialTransformer(1)
    x = torch.rand(3, 1, 24, 24)
    torch.testing.assert_close(stn(x), x, rtol=0, atol=1e-5)  # grid round-off
    with torch.no_grad():  # a predicted zoom: theta = diag(0.5) reads the central half
        stn.localisation[-1].bias.copy_(torch.tensor([0.5, 0, 0, 0, 0.5, 0]))
    assert not torch.allclose(stn(x), x, atol=1e-3)


def test_derivative_operators_are_smoothing_then_central_differences():
    from sesn.baselines.dss import discrete_gaussian

    g = discrete_gaussian(2.0)
    x = torch.randn(16, dtype=torch.float64)
    r = g.numel() // 2
    smooth = F.conv1d(x.view(1, 1, -1), g.view(1, 1, -1), padding=r).view(-1)
    torch.testing.assert_close(smoothing_matrix(g, 16) @ x, smooth, rtol=1e-5, atol=1e-5)
    d1 = F.conv1d(smooth.view(1, 1, -1), torch.tensor([[[-0.5, 0.0, 0.5]]], dtype=torch.float64), padding=1).view(-1)
    torch.testing.assert_close(difference(smoothing_matrix(g, 16) @ x, 1, -1), d1, rtol=1e-5, atol=1e-5)
    assert derivative_orders(2) == [(1, 0), (0, 1), (2, 0), (1, 1), (0, 2)]
    assert len(derivative_orders(3)) == 9


def _blob(size, sigma, dtype=torch.float64):
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size, dtype=dtype), torch.arange(size, dtype=dtype), indexing="ij")
    # an anisotropic, off-centre blob: first and second derivatives all non-zero
    return torch.exp(-(((xx - c - sigma) / (1.5 * sigma)) ** 2 + ((yy - c) / sigma) ** 2) / 2)[None, None]


@pytest.mark.parametrize("normalise", [True, False])
def test_gaussian_derivative_layer_is_scale_covariant(normalise, monkeypatch):
    """Rescaling the image by 2 maps the channel at multiplier m onto the one at 2m (scale-
    normalised derivatives): the outputs match after resizing; without the normalisation
    sigma^|a| they do not (the plant)."""
    torch.manual_seed(0)
    layer = GaussDerLift(1, 4, 1.0, [1.0, 2.0], max_order=2, bias=False).double()
    if not normalise:
        layer.scales = [1.0, 1.0]  # the derivatives' factor sigma^|a| no longer follows the scale
        monkeypatch.setattr(type(layer), "scale_ratio", property(lambda self: 2.0))
    small, big = _blob(33, 3.0), _blob(65, 6.0)  # the same pattern at twice the size
    with torch.no_grad():
        y_small = layer(small)[:, :, 0]
        y_big = layer(big)[:, :, 1]
    back = F.interpolate(y_big, size=(33, 33), mode="bilinear", align_corners=True)
    err = float((back - y_small).norm() / y_small.norm())
    print(f"relative error {err:.3f}")
    if normalise:
        assert err < 0.1, err
    else:
        assert err > 0.3, err


def _gauss_der_definition(layer, x, i):
    """Scale channel i by the definition: smoothing, the central differences of every order
    (zero padding), sigma^|a| times each, then the 1 x 1 mix and the bias."""
    b, c, h, w = x.shape
    smooth = layer._smoothing(i, h, x) @ x @ layer._smoothing(i, w, x).T
    s = layer.scales[i]
    derivs = torch.stack(
        [difference(difference(smooth, ax, -1), ay, -2) * s ** (ay + ax) for ay, ax in layer.orders], 2
    )
    y = torch.einsum("oca,bcahw->bohw", layer.weight, derivs)
    return y if layer.bias is None else y + layer.bias.view(1, -1, 1, 1)


@pytest.mark.parametrize("max_order", [1, 2, 3])
def test_gaussian_derivative_channels_equal_their_definition(max_order):
    """Up to order 2 the layer is one 3 x 3 convolution per channel (derivatives and mix
    folded into its kernel), order 3 the explicit differences: both equal the definition,
    border included (the 13 px input is smaller than the coarse channels' Gaussians)."""
    torch.manual_seed(0)
    lift = GaussDerLift(2, 3, 1.0, [0.5, 1.0, 2.0], max_order=max_order).double()
    conv = GaussDerConv(3, 4, 2.0, [0.5, 1.0, 2.0], max_order=max_order).double()
    for p in (*lift.parameters(), *conv.parameters()):  # a non-zero bias too
        torch.nn.init.normal_(p)
    x = torch.randn(2, 2, 13, 15, dtype=torch.float64)
    h = lift(x)
    for i in range(3):
        torch.testing.assert_close(h[:, :, i], _gauss_der_definition(lift, x, i), rtol=1e-10, atol=1e-10)
    y = conv(h)
    for i in range(3):
        torch.testing.assert_close(y[:, :, i], _gauss_der_definition(conv, h[:, :, i], i), rtol=1e-10, atol=1e-10)


def test_gaussian_derivative_network_memory_is_modelled_on_meta():
    """The memory model runs networks on the meta device (no values): the smoothing matrices
    come from CPU copies of the Gaussians, not from buffers moved there."""
    from sesn.memory import training_memory

    assert training_memory("stir_gdn_max", batch=2).peak_bytes > 0


def test_gaussian_derivative_layers_shapes_and_errors():
    lift = GaussDerLift(1, 3, 1.0, [0.5, 1, 2])
    conv = GaussDerConv(3, 5, 2.0, [0.5, 1, 2], max_order=3)
    x = torch.rand(2, 1, 16, 16)
    h = lift(x)
    assert h.shape == lift.evaluate_output_shape(x.shape) == (2, 3, 3, 16, 16)
    assert conv(h).shape == (2, 5, 3, 16, 16)
    assert lift.scale_ratio == 4
    with pytest.raises(ValueError, match="3 scales"):
        conv(h[:, :, :2])
    with pytest.raises(ValueError, match="max_order"):
        GaussDerLift(1, 3, 1.0, [1], max_order=4)


def test_scale_channel_pool_modes_and_dropout():
    v = torch.tensor([[[1.0, 5.0, 3.0]]])
    pool = ScaleChannelPool("max", dropout=0.5)
    pool.eval()
    assert float(pool(v)) == 5.0
    assert float(ScaleChannelPool("avg").eval()(v)) == 3.0
    pool.train()
    torch.manual_seed(0)
    outs = {float(pool(v)) for _ in range(50)}
    assert outs <= {1.0, 5.0, 3.0} and len(outs) > 1  # dropped channels change the pick
    always = ScaleChannelPool("avg", dropout=0.99).train()
    assert torch.isfinite(always(v.expand(64, 1, 3))).all()  # never all channels dropped
    with pytest.raises(ValueError, match="mode"):
        ScaleChannelPool("sum")


def test_centre_padding_undoes_cropping():
    x = torch.arange(7 * 9, dtype=torch.float32).view(1, 1, 7, 9)
    for h, w in [(4, 5), (3, 8)]:
        torch.testing.assert_close(centre(centre(x, h, w), 7, 9) * (centre(centre(torch.ones_like(x), h, w), 7, 9)),
                                   x * centre(centre(torch.ones_like(x), h, w), 7, 9))  # fmt: skip
    assert centre(x, 11, 12).shape[-2:] == (11, 12) and torch.equal(centre(centre(x, 11, 12), 7, 9), x)


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_foveated_channels_taken_back_to_the_input_frame(pool):
    """With an identity network, every channel taken back to the input frame is the image
    itself (up to resampling), so the pooled map is close to the image."""
    x = _blob(64, 5.0).float()
    fov = FoveatedScaleChannels(torch.nn.Identity(), [0.5, 0.71, 1.0, 1.41], pool)
    assert fov.channels(x).shape == (1, 1, 4, 64, 64)
    err = float((fov(x) - x).norm() / x.norm())
    assert err < 0.05, err
    assert math.isclose(fov.scale_ratio, 1.41 / 0.5)


def test_foveated_zoom_in_channel_sees_the_centre_enlarged():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 15:17, 15:17] = 1  # a 2 px dot in the middle
    ch = FoveatedScaleChannels(torch.nn.Identity(), [1.0, 2.0]).channels(x)
    # in the x2 channel the dot covers about 4 x 4 px, still in the middle of the fovea
    mass = ch[0, 0, 1]
    assert mass.shape == (32, 32) and float(mass[12:20, 12:20].sum()) > 0.9 * float(mass.sum())
    assert float(mass.sum()) == pytest.approx(4 * float(x.sum()), rel=0.1)
