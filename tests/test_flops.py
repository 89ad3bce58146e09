import torch
import torch.nn.functional as F

from sesn.flops import conv_forward_flops, count_flops, stock_count_flops
from sesn.nn import SESConv_H_H


def test_grouped_conv_backward_is_two_forwards():
    x = torch.randn(2, 8, 10, 10, requires_grad=True)
    w = torch.randn(12, 2, 3, 3, requires_grad=True)  # groups = 4
    fwd = conv_forward_flops(x.shape, w.shape, (2, 12, 8, 8))
    total, _ = count_flops(lambda: F.conv2d(x, w, groups=4).sum().backward())
    assert total == 3 * fwd  # forward + grad_input + grad_weight
    stock = stock_count_flops(lambda: F.conv2d(x, w, groups=4).sum().backward())
    assert stock == fwd + fwd + 4 * fwd  # the stock counter charges grad_weight x groups


def test_plain_conv_matches_analytic():
    x = torch.randn(3, 4, 12, 12)
    w = torch.randn(5, 4, 7, 7)
    total, _ = count_flops(lambda: F.conv2d(x, w, padding=3))
    assert total == 2 * 3 * 5 * 4 * 49 * 144


def test_complex_matmul_and_fft_are_counted():
    a = torch.randn(6, 5, 4, dtype=torch.complex64)
    b = torch.randn(6, 4, 3, dtype=torch.complex64)
    total, _ = count_flops(lambda: torch.bmm(a, b))
    assert total == 4 * 2 * 6 * 5 * 3 * 4
    x = torch.randn(2, 16, 16)
    total, per_op = count_flops(lambda: torch.fft.rfft2(x))
    # real-to-complex FFT of 256 points, batch 2: 2.5 N log2 N per transform (half of a complex FFT)
    assert total == int(2.5 * 256 * 8 * 2) and any("fft" in k for k in per_op)


def test_naive_hh_flops_analytic():
    """Naive H->H: scale_size grouped convs (groups = S) of the full k x k kernel."""
    layer = SESConv_H_H(3, 4, 2, 7, 3, [1.0, 1.5, 2.0], padding=3, compute_mode="naive")
    x = torch.randn(2, 3, 3, 9, 9)
    total, per_op = count_flops(lambda: layer(x))
    conv = sum(v for k, v in per_op.items() if "convolution" in k)
    assert conv == 2 * (2 * 2 * 4 * 3 * 3 * 49 * 81)  # taps x (B * S*C_out * C_in * k^2 * HW)
