"""The FFT path of large-kernel convolutions equals ``F.conv2d`` (stride 1, padding, groups)
to float round-off, and the baselines that use it give the same output on both paths."""

import pytest
import torch
import torch.nn.functional as F

from sesn.nn.large_kernel import fft_conv2d


@pytest.mark.parametrize(
    "c_in,c_out,k,padding,groups,size",
    [(1, 4, 15, 7, 1, 20), (6, 8, 17, 0, 2, 24), (3, 3, 5, 2, 3, 9), (4, 6, 9, 8, 1, 11), (2, 4, 7, 3, 1, 7)],
)
def test_fft_conv2d_equals_conv2d(c_in, c_out, k, padding, groups, size):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, c_in, size, size + 1, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in // groups, k, k, generator=g, dtype=torch.float64)
    ref = F.conv2d(x, w, padding=padding, groups=groups)
    out = fft_conv2d(x, w, padding=padding, groups=groups)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_fft_conv2d_gradients_match():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 16, 16, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(6, 2, 15, 15, generator=g, dtype=torch.float64, requires_grad=True)
    gx1, gw1 = torch.autograd.grad(F.conv2d(x, w, padding=7, groups=2).pow(2).sum(), (x, w))
    gx2, gw2 = torch.autograd.grad(fft_conv2d(x, w, padding=7, groups=2).pow(2).sum(), (x, w))
    torch.testing.assert_close(gx2, gx1)
    torch.testing.assert_close(gw2, gw1)


def test_fft_conv2d_refuses_mismatched_channels():
    with pytest.raises(ValueError, match="do not match"):
        fft_conv2d(torch.zeros(1, 3, 8, 8), torch.zeros(4, 2, 3, 3), groups=1)


@pytest.mark.parametrize("pool", ["pixel", "slice"])
def test_pixel_pool_same_on_both_paths(monkeypatch, pool):
    from sesn.baselines.pixel_pool import PixelPoolConv2d

    torch.manual_seed(0)
    layer = PixelPoolConv2d(3, 4, 7, sizes=(7, 9, 13, 17, 23), pool=pool).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    monkeypatch.setenv("SESN_LARGE_KERNEL", "direct")
    ref = layer(x)
    monkeypatch.setenv("SESN_LARGE_KERNEL", "auto")
    torch.testing.assert_close(layer(x), ref)


def test_sicnn_same_on_both_paths(monkeypatch):
    from sesn.baselines.sicnn import SiCNNConv2d

    torch.manual_seed(0)
    layer = SiCNNConv2d(2, 3, 7, [0.5, 1.0, 2.3], num_input_scales=3).double()
    x = torch.randn(2, 6, 30, 30, dtype=torch.float64)
    monkeypatch.setenv("SESN_LARGE_KERNEL", "direct")
    ref = layer(x)
    monkeypatch.setenv("SESN_LARGE_KERNEL", "fft")
    torch.testing.assert_close(layer(x), ref)


def _sicnn_definition(layer, x):
    """The layer's definition: one (grouped) convolution with every column's full K x K kernel."""
    return F.conv2d(x, layer.kernels(), stride=layer.stride, padding=layer.padding, groups=layer.num_input_scales)


@pytest.mark.parametrize(
    "c_in,scales,inputs,stride,pad,size",
    [
        (2, [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33], 7, 1, True, 40),  # the STIR/MNIST pyramid, columns fed apart
        (1, [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33], 1, 1, True, 33),  # the first layer: the image feeds all
        (2, [0.5, 1.0, 2.3], 3, 2, True, 31),  # stride 2
        (3, [0.4, 1.0, 1.8], 1, 1, False, 29),  # no padding: margins wider than the padding crop the input
        (2, [0.4, 1.0, 1.8], 3, 2, False, 30),
    ],
)
def test_sicnn_columns_cropped_to_their_support_equal_the_full_kernels(c_in, scales, inputs, stride, pad, size):
    from sesn.baselines.sicnn import SiCNNConv2d

    torch.manual_seed(0)
    layer = SiCNNConv2d(c_in, 3, 7, scales, stride=stride, pad_if_needed=pad, num_input_scales=inputs).double()
    assert any(layer.margins), "no column was cropped: the test would not exercise the cropping"
    x = torch.randn(2, c_in * inputs, size, size + 2, dtype=torch.float64, requires_grad=True)
    ref = _sicnn_definition(layer, x)
    out = layer(x)
    assert out.shape == ref.shape == (2, 3 * len(scales), *layer.evaluate_output_shape(x.shape)[2:])
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    g_ref = torch.autograd.grad(ref.pow(2).sum(), (x, layer.weight))
    g_out = torch.autograd.grad(out.pow(2).sum(), (x, layer.weight))
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_sicnn_margin_of_the_unit_column_is_the_padding_of_the_weight():
    """At scale 1 the column's kernel is the 7 x 7 weight centred in the K x K frame
    (K = 23 for scales up to 3.33): its zero margin is (23 - 7) / 2 = 8; the largest scale fills
    the frame (margin 0)."""
    from sesn.baselines.sicnn import SiCNNConv2d

    scales = [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33]
    layer = SiCNNConv2d(2, 3, 7, scales)
    assert layer.kernels().shape[-1] == 23
    assert layer.margins[scales.index(1.0)] == 8 and layer.margins[-1] == 0
    assert layer.margins == sorted(layer.margins, reverse=True)  # larger scale, wider support


@pytest.mark.parametrize("mode", ["auto", "fft"])
def test_pixel_pool_responses_in_size_order_on_every_path(monkeypatch, mode):
    """Per kernel size, not only after the pool (a max over sizes hides a swap of two sizes):
    on the auto path the small sizes are direct and the large ones one spectral convolution."""
    from sesn.baselines.pixel_pool import PixelPoolConv2d

    torch.manual_seed(0)
    layer = PixelPoolConv2d(3, 4, 7, sizes=(7, 9, 13, 17, 23, 29)).double()
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    monkeypatch.setenv("SESN_LARGE_KERNEL", "direct")
    ref = layer.responses(x)
    monkeypatch.setenv("SESN_LARGE_KERNEL", mode)
    torch.testing.assert_close(layer.responses(x), ref)


def test_sicnn_builds_on_the_meta_device():
    """The support margins are found on the CPU whatever the default device (the memory
    model builds networks on "meta", where tensors have no values)."""
    from sesn.baselines.sicnn import SiCNNConv2d

    with torch.device("meta"):
        layer = SiCNNConv2d(2, 3, 7, [0.5, 1.0, 2.3], num_input_scales=3)
    assert layer.weight.is_meta and layer.margins == SiCNNConv2d(2, 3, 7, [0.5, 1.0, 2.3]).margins
    assert layer(torch.empty(2, 6, 30, 30, device="meta")).shape == (2, 9, 30, 30)


def test_fft_conv2d_keeps_only_input_and_weight_for_backward():
    """The spectra and the kernel matrix (as large as the weight times the frequencies) are
    recomputed in backward, not kept: the saved tensors are the input's and the weight's size."""
    x = torch.randn(2, 4, 40, 40, requires_grad=True)
    w = torch.randn(8, 4, 23, 23, requires_grad=True)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.numel()) or t, lambda t: t):
        y = fft_conv2d(x, w, padding=11)
    assert saved and sum(saved) <= x.numel() + w.numel()
    y.sum().backward()
    assert x.grad is not None and w.grad is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fft_conv2d_low_precision_inputs(dtype):
    """float32 (and bfloat16, computed in float32) to that precision's round-off, output in the input's dtype."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 30, 30, generator=g).to(dtype)
    w = torch.randn(5, 3, 17, 17, generator=g).to(dtype)
    ref = F.conv2d(x.double(), w.double(), padding=8)
    out = fft_conv2d(x, w, padding=8)
    assert out.dtype == dtype
    tol = 1e-4 if dtype == torch.float32 else 2e-2
    assert (out.double() - ref).abs().max() <= tol * ref.abs().max()


def test_fft_conv2d_forward_mode_jvp_equals_the_direct_convolutions():
    """The Lie derivative differentiates layers in forward mode (torch.func.jvp, no graph): the
    FFT path must support it (no autograd.Function on the no-grad path) and give conv2d's jvp."""
    torch.manual_seed(0)
    x, w = torch.randn(2, 3, 40, 40, dtype=torch.float64), torch.randn(4, 3, 23, 23, dtype=torch.float64)
    tx, tw = torch.randn_like(x), torch.randn_like(w)
    with torch.no_grad():
        _, got = torch.func.jvp(lambda a, b: fft_conv2d(a, b, padding=11), (x, w), (tx, tw))
        _, ref = torch.func.jvp(lambda a, b: F.conv2d(a, b, padding=11), (x, w), (tx, tw))
    assert torch.allclose(got, ref, rtol=1e-10, atol=1e-10 * float(ref.abs().max()))
