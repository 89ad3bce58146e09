import pytest
import torch
import torch.nn.functional as F

import sesn.models as m
from sesn.baselines.common import pad_or_crop, rescale_bilinear
from sesn.baselines.dss import BesselConv2d, Dconv2d, discrete_gaussian
from sesn.baselines.si_convnet import SIConv2d
from sesn.baselines.sicnn import ColumnMax, SiCNNConv2d
from sesn.equivariance import translation_equivariance

BASELINES = {
    "mnist_kanazawa_28": 494_549,
    "mnist_kanazawa_56": 494_549,
    "mnist_xu_28": 496_639,
    "mnist_xu_56": 496_639,
    "mnist_dss_scalar_28": 494_359,
    "mnist_dss_scalar_56": 494_359,
    "mnist_dss_vector_28": 494_359,
    "mnist_dss_vector_56": 494_359,
    "mnist_sevf_scalar_28": 494_425,
    "mnist_sevf_scalar_56": 494_425,
    "mnist_sevf_vector_28": 475_475,
    "mnist_sevf_vector_56": 475_475,
    "mnist_ss_28": 493_688,
    "mnist_ss_56": 493_688,
}
NON_TRAINABLE = {"mnist_ss_28": 27_378, "mnist_ss_56": 46_818}


@pytest.mark.parametrize("name, params", BASELINES.items())
def test_baseline_models_parameters_and_shapes(name, params):
    torch.manual_seed(0)
    model = m.get_model(name)
    assert m.count_parameters(model) == params == m.get_model_info(name).num_params
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == NON_TRAINABLE.get(name, 0)
    y = model(torch.randn(2, 1, 28, 28))
    assert y.shape == (2, 10)
    y.sum().backward()
    trained = [p for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert trained and all(torch.isfinite(p.grad).all() for p in trained)
    with pytest.raises(ValueError, match="input channel"):
        model(torch.randn(2, 3, 28, 28))


def test_pyramid_sizes_match_the_reference():
    x = torch.randn(1, 1, 28, 28)
    assert [rescale_bilinear(x, s).shape[-1] for s in [0.3, 0.45, 0.67, 1.49, 2.23, 3.33]] == [8, 12, 18, 41, 62, 93]
    assert pad_or_crop(torch.ones(1, 1, 5, 5), 8).sum() == 25
    assert pad_or_crop(torch.ones(1, 1, 5, 5), 8)[0, 0, 1, 1] == 1  # left pad 1, extra pixel right
    assert pad_or_crop(torch.arange(36.0).view(1, 1, 6, 6), 3)[0, 0, 0, 0] == 14  # crop 2 left/top, 1 right/bottom


def test_si_conv_with_one_scale_is_a_plain_conv():
    torch.manual_seed(0)
    layer = SIConv2d(2, 3, 7, [1.0], padding=3)
    x = torch.randn(2, 2, 20, 20)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, layer.bias, padding=3))
    with pytest.raises(ValueError, match="square"):
        layer(torch.randn(1, 2, 20, 21))


def test_sicnn_column_one_is_the_weight_and_l1_is_kept():
    torch.manual_seed(0)
    layer = SiCNNConv2d(2, 3, 7, [0.67, 1.0, 1.49])
    k = layer.kernels()
    big = k.shape[-1]
    p = (big - 7) // 2
    torch.testing.assert_close(k[3:6, :, p : p + 7, p : p + 7], layer.weight)
    n1 = layer.weight.abs().sum((2, 3))
    for s in range(3):
        torch.testing.assert_close(k[3 * s : 3 * s + 3].abs().sum((2, 3)), n1)


def test_sicnn_columns_never_mix():
    torch.manual_seed(0)
    layer = SiCNNConv2d(2, 3, 7, [0.67, 1.0, 1.49], num_input_scales=3)
    x = torch.randn(1, 6, 16, 16)
    y = layer(x)
    x2 = x.clone()
    x2[:, :2] += 1.0  # perturb column 0's input only
    y2 = layer(x2)
    assert not torch.allclose(y2[:, :3], y[:, :3])
    assert torch.equal(y2[:, 3:], y[:, 3:])
    assert ColumnMax(3)(y).shape == (1, 3, 16, 16)
    with pytest.raises(ValueError, match="expected"):
        layer(torch.randn(1, 2, 16, 16))


def test_dss_scale_space():
    g = discrete_gaussian(0.1875)
    assert g.numel() == 9 and abs(float(g.sum()) - 1) < 1e-12 and torch.equal(g, g.flip(0))
    lift = BesselConv2d(3, 2.0, 0.25, 2)
    x = torch.randn(2, 3, 12, 12)
    y = lift(x)
    assert y.shape == (2, 3, 2, 12, 12) and torch.equal(y[:, :, 0], x)
    # depthwise: channel c of the blurred slice depends only on channel c
    x2 = x.clone()
    x2[:, 0] += 1
    assert torch.equal(lift(x2)[:, 1:, 1], y[:, 1:, 1])


def test_dconv_dilates_per_scale_and_is_translation_equivariant():
    torch.manual_seed(0)
    conv = Dconv2d(2, 3, (1, 3, 3), 2.0, (2, 2)).double()
    x = torch.randn(2, 2, 2, 20, 20, dtype=torch.float64)
    y = conv(x)
    w = conv.weight[:, :, 0]
    torch.testing.assert_close(y[:, :, 1], F.conv2d(x[:, :, 1], w, padding=2, dilation=2))
    assert translation_equivariance(conv, x, (2, -3), radius=2) < 1e-20
    with pytest.raises(ValueError, match="input scales"):
        Dconv2d(2, 3, (1, 3, 3), 2.0, (3, 3))(x)


def test_si_conv_pooled_max_reduces_rescale_error_vs_plain_conv():
    """SI-ConvNet pools over the scales it tries, so at a factor in its pyramid (0.67) its
    response changes less than a plain conv's with the same weights (measured here: 0.22 vs 0.37)."""
    from sesn.equivariance import rescale_equivariance
    from sesn.transforms import smooth_random_field

    torch.manual_seed(0)
    si = SIConv2d(1, 4, 7, [0.67, 1.0, 1.49], padding=3).double()
    conv = torch.nn.Conv2d(1, 4, 7, padding=3).double()
    with torch.no_grad():
        conv.weight.copy_(si.weight)
        conv.bias.copy_(si.bias)
    x = smooth_random_field((4, 1, 48, 48), torch.Generator().manual_seed(0))
    assert rescale_equivariance(si, x, 0.67) < rescale_equivariance(conv, x, 0.67)


def test_ss_cnn_basis_and_kappa():
    from sesn.baselines.ss_cnn import ScaleConvSteering, log_radial_harmonic

    layer = ScaleConvSteering(1, 2, 11, [5, 7, 9, 11, 13])
    torch.testing.assert_close(layer.kappa, torch.tensor([1.469, 2.938, 5.877]), atol=1e-3, rtol=0)
    assert torch.allclose(
        ScaleConvSteering(1, 2, 11, [7, 9, 11, 13, 15, 17]).kappa, torch.tensor([1.295, 2.590, 5.180]), atol=1e-3
    )
    re, im, _ = log_radial_harmonic(13, 1.0, 0.3, 0.2, -0.7)
    assert abs((re**2).sum() - 1) < 1e-12 and abs((im**2).sum() - 1) < 1e-12
    a, _, _ = log_radial_harmonic(13, 1.0, 0.0, 0.2, -0.7)
    b, _, _ = log_radial_harmonic(13, 1.0, float(torch.pi), 0.2, -0.7)
    assert abs(a - b).max() < 1e-12  # phi0 = 0 and pi give the same function (kept quirk)
    assert len(layer.kernels()) == 5 and layer.kernels()[0].shape == (2, 1, 5, 5)


def test_sevf_scalar_layer_is_relu_of_max_and_vector_ops():
    from sesn.baselines.sevf import (
        ANGLES,
        SCALES,
        Magnitude,
        ScaleConvScalar,
        VectorBatchNorm,
        VectorMaxPool,
        conv_scale,
    )

    assert [round(s, 3) for s in SCALES] == [0.397, 0.5, 0.63, 0.794, 1.0, 1.26, 1.588, 2.0]
    assert [int(round(28 * s)) for s in SCALES] == [11, 14, 18, 22, 28, 35, 44, 56]
    assert abs(ANGLES[0] + 1.197) < 1e-3 and abs(ANGLES[-1] - 0.898) < 1e-3
    torch.manual_seed(0)
    layer = ScaleConvScalar(1, 2)
    x = torch.randn(2, 1, 28, 28)
    mag = Magnitude()(layer(x))
    best = torch.stack([conv_scale(x, layer.weight, s, 3) for s in SCALES]).max(0).values
    torch.testing.assert_close(mag, torch.relu(best))
    u, v = torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4)
    pu, pv = VectorMaxPool(2)((u, v))
    m = torch.sqrt(u**2 + v**2)
    i = m[0, 0, :2, :2].argmax()
    assert pu[0, 0, 0, 0] == u[0, 0, :2, :2].flatten()[i] and pv[0, 0, 0, 0] == v[0, 0, :2, :2].flatten()[i]
    bn = VectorBatchNorm(1)
    bn((u, v))
    assert bn.running_var.item() != 1.0


STL_BASELINES = {
    "wrn_16_8_kanazawa": (10_961_370, 0),
    "wrn_16_8_xu": (10_975_770, 0),
    "wrn_16_8_ss": (10_846_835, 2_826),
    "wrn_16_8_dss": (10_939_482, 0),
}


@pytest.mark.parametrize("name", STL_BASELINES)
def test_stl10_baselines(name):
    torch.manual_seed(0)
    model = m.get_model(name).eval()
    trainable, frozen = STL_BASELINES[name]
    assert m.count_parameters(model) == trainable == m.get_model_info(name).num_params
    assert sum(p.numel() for p in model.parameters() if not p.requires_grad) == frozen
    with torch.no_grad():
        y = model(torch.randn(1, 3, 96, 96))
    assert y.shape == (1, 10) and torch.isfinite(y).all()
    with pytest.raises(ValueError, match="96x96"):
        model(torch.randn(1, 3, 64, 64))


def test_wrn_ss_bug_is_reproduced_and_fixable():
    buggy = m.get_model("wrn_16_8_ss")
    fixed = m.get_model("wrn_16_8_ss", fixed=True)
    assert buggy.blocks[0].conv1.ker_size_range == [3] and fixed.blocks[0].conv1.ker_size_range == [3, 5, 7]
    assert buggy.stem.ker_size_range == [3, 5, 7]
    assert abs(float(buggy.blocks[0].conv1.kappa[0]) - 18.13) < 0.01


def test_dss_delta_init_is_block_identity():
    from sesn.baselines.dss import Dconv2d

    conv = Dconv2d(4, 6, (2, 3, 3), 2.0, (2, 2), init="delta")
    centre = conv.weight[:, :, 0, 1, 1]
    # gcd(4, 6) = 2: input channels 0-1 -> outputs 0-2, inputs 2-3 -> outputs 3-5, value 2/6
    expected = torch.zeros(6, 4)
    expected[:3, :2] = expected[3:, 2:] = 2 / 6
    on = expected > 0
    torch.testing.assert_close(centre[on], expected[on])
    assert centre[~on].abs().max() <= 0.01


@pytest.mark.parametrize("pool", ["pixel", "slice", "energy"])
def test_pixel_pool_rules_pick_what_stir_defines(pool):
    """pixel: max over the sizes per pixel; slice / energy: per sample and channel, the whole
    response of the size whose response has the largest value / sum (checked against a loop)."""
    from sesn.baselines.pixel_pool import PixelPoolConv2d

    torch.manual_seed(0)
    layer = PixelPoolConv2d(2, 3, 5, [5, 7, 9], pool=pool).double()
    x = torch.randn(4, 2, 21, 21, dtype=torch.float64)
    y = layer(x)
    ys = [torch.nn.functional.conv2d(x, w, padding=w.shape[-1] // 2) for w in layer.kernels()]
    bias = layer.bias.view(1, -1, 1, 1)
    if pool == "pixel":
        torch.testing.assert_close(y, torch.stack(ys).amax(0) + bias, rtol=0, atol=0)
        return
    for b in range(4):
        for c in range(3):
            scores = [float(r[b, c].max() if pool == "slice" else r[b, c].sum()) for r in ys]
            best = max(range(len(ys)), key=lambda m: scores[m])
            torch.testing.assert_close(y[b, c], ys[best][b, c] + layer.bias[c], rtol=0, atol=0)
    # the rule differs from the pixel max (a whole slice is kept), and gradients reach the weight
    assert not torch.equal(y, torch.stack(ys).amax(0) + bias)
    y.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="pool must be one of"):
        PixelPoolConv2d(1, 1, 5, pool="max")


@pytest.mark.parametrize("n,size", [(28, 28), (64, 64), (31, 25), (20, 33)])
def test_rescale_to_equals_interpolate_then_pad_or_crop(n, size):
    """The matrix form SI-ConvNet uses is the reference's interpolate (bilinear,
    align_corners=True) followed by the centred pad / crop, values and gradients."""
    from sesn.baselines.common import rescale_to

    g = torch.Generator().manual_seed(n)
    for s in [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33, 1 / 0.3, 1 / 3.33]:
        x = torch.randn(2, 3, n, n, generator=g, dtype=torch.float64, requires_grad=True)
        ref = pad_or_crop(rescale_bilinear(x, s), size)
        out = rescale_to(x, s, size)
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        v = torch.randn(ref.shape, generator=g, dtype=torch.float64)
        (g_ref,) = torch.autograd.grad(ref, x, v)
        (g_out,) = torch.autograd.grad(out, x, v)
        torch.testing.assert_close(g_out, g_ref, rtol=1e-12, atol=1e-12)


def test_si_conv_equals_its_definition():
    """Every scale: rescale, centre to N, shared conv, rescale back, centre; max over scales."""
    torch.manual_seed(0)
    scales = [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33]
    layer = SIConv2d(2, 3, 7, scales, padding=3).double()
    x = torch.randn(2, 2, 28, 28, dtype=torch.float64, requires_grad=True)
    ys = []
    for s in scales:
        y = F.conv2d(pad_or_crop(rescale_bilinear(x, s), 28), layer.weight, layer.bias, padding=3)
        ys.append(pad_or_crop(rescale_bilinear(y, 1 / s), 28))
    ref = torch.stack(ys).max(0).values
    out = layer(x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g_ref = torch.autograd.grad(ref.pow(2).sum(), (x, layer.weight))
    g_out = torch.autograd.grad(out.pow(2).sum(), (x, layer.weight))
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
