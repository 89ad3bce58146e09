import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sesn.basis import basis_tensor, paper_scales
from sesn.nn import (
    ScaleBatchNorm,
    ScaleMaxPool2d,
    SESConv_H_H,
    SESConv_H_H_1x1,
    SESConv_Z2_H,
    SESMaxProjection,
    SESMeanProjection,
)

SCALES = list(paper_scales(4, 3.0, 1.7))


def th(**kw):
    args = dict(
        in_channels=3,
        out_channels=5,
        kernel_size=15,
        effective_size=7,
        scales=SCALES,
        padding=7,
        basis_type="B",
        mult=1.5,
    )
    args.update(kw)
    return SESConv_Z2_H(**args)


def hh(**kw):
    args = dict(
        in_channels=5,
        out_channels=4,
        scale_size=2,
        kernel_size=15,
        effective_size=7,
        scales=SCALES,
        padding=7,
        basis_type="B",
        mult=1.5,
    )
    args.update(kw)
    return SESConv_H_H(**args)


def test_th_shapes_and_parameters():
    layer = th(bias=True)
    assert layer.weight.shape == (5, 3, 49) and layer.bias.shape == (5,)
    assert layer.basis.shape == (49, 4, 15, 15)
    y = layer(torch.randn(2, 3, 28, 28))
    assert y.shape == (2, 5, 4, 28, 28)
    assert layer.evaluate_output_shape((2, 3, 28, 28)) == tuple(y.shape)
    # parameter count of a plain 7x7 conv, independent of S and k
    assert sum(p.numel() for p in layer.parameters()) == sum(p.numel() for p in nn.Conv2d(3, 5, 7).parameters())


def test_th_stride_and_output_shape():
    layer = th(stride=2, padding=3)
    y = layer(torch.randn(1, 3, 30, 30))
    assert tuple(y.shape) == layer.evaluate_output_shape((1, 3, 30, 30)) == (1, 5, 4, 11, 11)


def test_hh_shapes():
    layer = hh(bias=True)
    assert layer.weight.shape == (4, 5, 2, 49)
    y = layer(torch.randn(2, 5, 4, 20, 20))
    assert y.shape == (2, 4, 4, 20, 20) == layer.evaluate_output_shape((2, 5, 4, 20, 20))


def test_th_matches_per_scale_conv2d_definition():
    torch.manual_seed(0)
    layer = th().double()
    x = torch.randn(2, 3, 25, 25, dtype=torch.float64)
    kernel = torch.einsum("oib,bskl->oiskl", layer.weight, layer.basis)
    y = layer(x)
    for i in range(4):
        torch.testing.assert_close(y[:, :, i], F.conv2d(x, kernel[:, :, i], padding=7))


def test_hh_matches_sum_over_taps_definition_and_pads_top_scales():
    torch.manual_seed(0)
    layer = hh(scale_size=3).double()
    x = torch.randn(2, 5, 4, 21, 21, dtype=torch.float64)
    kernel = torch.einsum("oijb,bskl->oijskl", layer.weight, layer.basis)
    y = layer(x)
    for i in range(4):
        expected = sum(F.conv2d(x[:, :, i + j], kernel[:, :, j, i], padding=7) for j in range(3) if i + j < 4)
        torch.testing.assert_close(y[:, :, i], expected)


@pytest.mark.parametrize(
    "make, shape",
    [(th, (2, 3, 28, 28)), (hh, (2, 5, 4, 23, 23)), (lambda **kw: hh(scale_size=3, **kw), (2, 5, 4, 19, 22))],
)
@pytest.mark.parametrize("stride, padding", [(1, 7), (2, 7), (1, 2), (2, 0)])
@pytest.mark.parametrize("mode", ["auto", "direct", "fft"])
def test_compute_modes_equal_naive(make, shape, stride, padding, mode):
    torch.manual_seed(1)
    layer = make(stride=stride, padding=padding, bias=True)
    x = torch.randn(*shape)
    layer.compute_mode = "naive"
    naive = layer(x)
    layer.compute_mode = mode
    if mode == "fft" and stride != 1:
        with pytest.raises(ValueError, match="stride 1 only"):
            layer(x)
        return
    out = layer(x)
    torch.testing.assert_close(out, naive, rtol=1e-5, atol=1e-5 * naive.abs().max().item())
    layer.eval()
    with torch.no_grad():  # cached kernels / spectra give the same result
        torch.testing.assert_close(layer(x), naive, rtol=1e-5, atol=1e-5 * naive.abs().max().item())
        torch.testing.assert_close(layer(x), naive, rtol=1e-5, atol=1e-5 * naive.abs().max().item())


def test_auto_picks_fft_for_large_maps_and_direct_for_strided():
    layer = hh(in_channels=32, out_channels=63, scale_size=1, kernel_size=15, padding=7)
    assert layer.resolve_mode((28, 28), 128, 1) == "fft"
    strided = hh(stride=2)
    assert strided.resolve_mode((14, 14), 128, 2) == "direct"
    small = th(in_channels=1, out_channels=32)
    assert small.resolve_mode((28, 28), 128, 1) == "direct"


@pytest.mark.parametrize("mode", ["direct", "fft"])
def test_compute_modes_equal_naive_gradients(mode):
    torch.manual_seed(2)
    layer = hh(compute_mode=mode)
    x = torch.randn(2, 5, 4, 20, 20, requires_grad=True)
    layer(x).square().sum().backward()
    g_fast, gx_fast = layer.weight.grad.clone(), x.grad.clone()
    layer.weight.grad = None
    x.grad = None
    layer.compute_mode = "naive"
    layer(x).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, g_fast, rtol=1e-4, atol=1e-4 * g_fast.abs().max().item())
    torch.testing.assert_close(x.grad, gx_fast, rtol=1e-4, atol=1e-4 * gx_fast.abs().max().item())


def test_unknown_compute_mode():
    with pytest.raises(ValueError, match="compute_mode"):
        th(compute_mode="fft-magic")


def test_kernel_cache_in_eval_is_invalidated_by_weight_change_train_and_dtype():
    torch.manual_seed(3)
    layer = th().eval()
    x = torch.randn(1, 3, 20, 20)
    with torch.no_grad():
        y1 = layer(x)
        assert layer._kernel_cache
        layer.weight.mul_(2.0)  # in-place change bumps the version counter
        y2 = layer(x)
        torch.testing.assert_close(y2, 2 * y1)
        layer.load_state_dict({"weight": layer.weight / 2})
        torch.testing.assert_close(layer(x), y1)
    layer.train()
    y_train = layer(x)
    assert not layer._kernel_cache
    torch.testing.assert_close(y_train.detach(), y1)
    layer.eval().double()
    assert layer.basis.dtype == torch.float64
    with torch.no_grad():
        y64 = layer(x.double())
    torch.testing.assert_close(y64.float(), y1, rtol=1e-4, atol=1e-5)


def test_double_basis_is_built_in_float64_not_widened():
    layer = th().double()
    exact = basis_tensor(layer.spec, torch.float64)
    assert torch.equal(layer.basis, exact)


def test_hh_1x1_applies_bias_and_shapes():
    layer = SESConv_H_H_1x1(4, 6, bias=True)
    with torch.no_grad():
        layer.bias.fill_(1.5)
        layer.weight.zero_()
    y = layer(torch.randn(2, 4, 3, 9, 9))
    assert y.shape == (2, 6, 3, 9, 9)
    assert torch.all(y == 1.5)
    assert layer.weight.shape == (6, 4, 1, 1)
    y2 = SESConv_H_H_1x1(4, 6, stride=2)(torch.randn(2, 4, 3, 9, 9))
    assert y2.shape == (2, 6, 3, 5, 5) == SESConv_H_H_1x1(4, 6, stride=2).evaluate_output_shape((2, 4, 3, 9, 9))


@pytest.mark.parametrize("scales", [1, 2, 4])
@pytest.mark.parametrize("layout", ["contiguous", "batch-innermost"])
def test_max_projection_values_and_gradients_equal_torch_max(scales, layout):
    """The fast scale max gives x.max(2)'s values and gradients exactly, ties included (the
    gradient goes to the first maximal scale), on the FFT path's batch-innermost layout too,
    and an in-place ReLU on its output leaves the gradient intact."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, scales, 6, 7, generator=g, dtype=torch.float64)
    if scales > 1:
        x[:, :2, -1] = x[:, :2, 0]  # exact ties between the first and last scale
        x[0, 0, :, 0, 0] = 1.0  # all scales tied
    if layout == "batch-innermost":
        x = x.permute(4, 3, 2, 1, 0).contiguous().permute(4, 3, 2, 1, 0)
    x.requires_grad_()
    grad = torch.randn(3, 5, 6, 7, generator=g, dtype=torch.float64)
    ref = x.max(2).values
    (ref_grad,) = torch.autograd.grad(ref.relu(), x, grad)
    out = SESMaxProjection()(x)
    assert torch.equal(out, ref)
    (out_grad,) = torch.autograd.grad(torch.relu_(out), x, grad)
    assert torch.equal(out_grad, ref_grad)


def test_projections_and_pooling_and_batchnorm_shapes():
    x = torch.randn(2, 4, 3, 8, 8)
    assert SESMaxProjection()(x).shape == (2, 4, 8, 8)
    torch.testing.assert_close(SESMaxProjection()(x), x.max(2).values)
    torch.testing.assert_close(SESMeanProjection()(x), x.mean(2))
    assert ScaleMaxPool2d(2)(x).shape == (2, 4, 3, 4, 4)
    bn = ScaleBatchNorm(4)
    assert bn(x).shape == x.shape
    assert bn.running_mean.shape == (4,)


# --- bad input -----------------------------------------------------------------


def test_th_wrong_rank():
    with pytest.raises(ValueError, match=r"rank 4.*rank 5"):
        th()(torch.randn(1, 3, 4, 20, 20))


def test_th_wrong_channels():
    with pytest.raises(ValueError, match=r"expected 3 input channels, got 2"):
        th()(torch.randn(1, 2, 20, 20))


def test_hh_wrong_scale_count():
    with pytest.raises(ValueError, match=r"expected 4 scales on axis 2, got 3"):
        hh()(torch.randn(1, 5, 3, 20, 20))


def test_hh_wrong_rank_and_channels():
    with pytest.raises(ValueError, match="rank 5"):
        hh()(torch.randn(1, 5, 20, 20))
    with pytest.raises(ValueError, match="expected 5 input channels, got 6"):
        hh()(torch.randn(1, 6, 4, 20, 20))


def test_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel of size 15 is larger than the padded input"):
        th(padding=0)(torch.randn(1, 3, 10, 10))
    with pytest.raises(ValueError, match="larger than the padded input"):
        hh(padding=1)(torch.randn(1, 5, 4, 10, 10))


def test_other_layers_bad_input():
    with pytest.raises(ValueError, match="rank 5"):
        SESMaxProjection()(torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match="expected 4 input channels"):
        SESConv_H_H_1x1(4, 2)(torch.randn(1, 3, 2, 5, 5))
    with pytest.raises(ValueError, match="expected 4 input channels"):
        ScaleBatchNorm(4)(torch.randn(2, 3, 2, 5, 5))
    with pytest.raises(ValueError, match="scale_size"):
        hh(scale_size=0)


# --- reference checkpoints -------------------------------------------------------


def reference_like_state_dict(layer):
    """What the reference layers save: weight, bias and the basis as a persistent buffer."""
    sd = {k: v.clone() for k, v in layer.state_dict().items()}
    sd["basis"] = basis_tensor(layer.spec, torch.float32)
    return sd


@pytest.mark.parametrize("make, shape", [(th, (2, 3, 20, 20)), (hh, (2, 5, 4, 20, 20))])
def test_reference_state_dict_loads_and_gives_same_outputs(make, shape):
    torch.manual_seed(4)
    src = make(bias=True)
    sd = reference_like_state_dict(src)
    assert "basis" in sd and "basis" not in src.state_dict()  # ours is non-persistent
    dst = make(bias=True)
    dst.load_state_dict(sd)  # strict: the basis key is consumed and checked
    x = torch.randn(*shape)
    torch.testing.assert_close(dst(x), src(x))


def test_reference_state_dict_with_other_basis_is_rejected():
    src = th(basis_type="A")
    sd = reference_like_state_dict(src)
    with pytest.raises(RuntimeError, match="checkpoint basis differs"):
        th(basis_type="B").load_state_dict(sd)
    sd_bad = dict(sd, basis=torch.zeros(9, 4, 15, 15))
    with pytest.raises(RuntimeError, match="checkpoint basis has shape"):
        th(basis_type="A").load_state_dict(sd_bad)


# --- bad input: every compute mode agrees or raises the same clear error ---------------------


@pytest.mark.parametrize("cls", ["th", "hh"])
def test_modes_agree_on_empty_batches_and_half_precision(cls):
    from sesn.nn import SESConv_H_H, SESConv_Z2_H

    torch.manual_seed(0)
    scales = [1.0, 1.5]
    outs = {}
    for mode in ("naive", "direct", "fft", "auto"):
        torch.manual_seed(0)
        if cls == "th":
            layer = SESConv_Z2_H(2, 3, 7, 3, scales, padding=3, bias=True, compute_mode=mode)
            shape = (2, 9, 9)
        else:
            layer = SESConv_H_H(2, 3, 2, 7, 3, scales, padding=3, bias=True, compute_mode=mode)
            shape = (2, 2, 9, 9)
        torch.nn.init.normal_(layer.bias)
        empty = layer(torch.zeros(0, *shape))
        assert empty.shape == (0, 3, 2, 9, 9)
        x = torch.randn(1, *shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            outs[mode] = layer.to(torch.bfloat16)(x.to(torch.bfloat16))
        assert outs[mode].dtype == torch.bfloat16
        with pytest.raises(TypeError, match="expected a floating-point input, got torch.int64"):
            layer(torch.ones(1, *shape, dtype=torch.int64))
        with pytest.raises(
            TypeError, match=r"input dtype torch.float32 does not match the layer's parameters \(torch.bfloat16\)"
        ):
            layer(x)
    ref = outs["naive"].float()
    for mode, y in outs.items():  # bfloat16 keeps ~3 significant digits
        assert float((y.float() - ref).norm() / ref.norm()) < 2e-2, mode


def test_constructor_arguments_are_validated():
    from sesn.models import get_model
    from sesn.nn import SESConv_H_H, SESConv_Z2_H

    cases = [
        (lambda: SESConv_Z2_H(1, 2, 7, 3, [1.0, 1.5], stride=0), "stride must be a positive int, got 0"),
        (lambda: SESConv_Z2_H(1, 2, 7, 3, [1.0, 1.5], padding=-1), "padding must be a non-negative int, got -1"),
        (lambda: SESConv_H_H(2.5, 2, 1, 7, 3, [1.0, 1.5]), "in_channels must be a positive int, got 2.5"),
        (lambda: SESConv_Z2_H(1, 2, 7, 3, "abc"), "scales must be a number or a sequence of positive numbers"),
        (lambda: SESConv_Z2_H(1, 2, 7.0, 3, [1.0]), "kernel_size must be an int"),
        (lambda: get_model(None), "model name must be a string"),
        (lambda: SESConv_H_H_1x1(4, 6, stride=0), "SESConv_H_H_1x1: stride must be a positive int, got 0"),
        (lambda: SESConv_H_H_1x1(4, 6, num_scales=0), "num_scales must be a positive int, got 0"),
    ]
    for build, msg in cases:
        with pytest.raises(ValueError, match=msg):
            build()
    assert SESConv_Z2_H(1, 2, 7, 3, 1.5, padding=3).scales == [1.5]  # a number is one scale


def test_modes_agree_under_autocast():
    from sesn.nn import SESConv_H_H

    x = torch.randn(1, 2, 2, 9, 9, generator=torch.Generator().manual_seed(1))
    outs = {}
    for mode in ("naive", "direct", "fft", "auto"):
        torch.manual_seed(0)
        layer = SESConv_H_H(2, 3, 2, 7, 3, [1.0, 1.5], padding=3, bias=True, compute_mode=mode)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            outs[mode] = layer(x)
            assert layer(x[:0]).dtype == torch.bfloat16
    assert {y.dtype for y in outs.values()} == {torch.bfloat16}  # as nn.Conv2d under autocast
    ref = outs["naive"].float()
    assert all(float((y.float() - ref).norm() / ref.norm()) < 2e-2 for y in outs.values())


def test_evaluate_output_shape_checks_channels_and_scales():
    """The shape function refuses what forward refuses (issue #43 item 4): a wrong channel count
    for both layers, a wrong scale count for H->H, naming expected and received."""
    lift = SESConv_Z2_H(2, 3, 7, 3, [1.0, 1.5, 2.0], padding=3)
    with pytest.raises(ValueError, match="expected 2 input channels, got 5"):
        lift.evaluate_output_shape((1, 5, 16, 16))
    hh = SESConv_H_H(3, 4, 1, 7, 3, [1.0, 1.5, 2.0], padding=3)
    with pytest.raises(ValueError, match="expected 3 scales on axis 2, got 7"):
        hh.evaluate_output_shape((1, 3, 7, 16, 16))
    with pytest.raises(ValueError, match="expected 3 input channels, got 2"):
        hh.evaluate_output_shape((1, 2, 3, 16, 16))
    assert hh.evaluate_output_shape((1, 3, 3, 16, 16)) == (1, 4, 3, 16, 16)
