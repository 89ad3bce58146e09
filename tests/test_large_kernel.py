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
