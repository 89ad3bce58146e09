import math

import pytest
import torch
import torch.nn.functional as F

from sesn.transforms import (
    rescale,
    rescale_and_scale_shift,
    rescale_matrix,
    scale_shift,
    smooth_random_field,
    translate,
)


def test_rescale_identity_and_matrix_rows_sum_to_one_inside():
    x = torch.randn(2, 3, 20, 20, dtype=torch.float64)
    assert torch.equal(rescale(x, 1.0), x)
    m = rescale_matrix(64, 0.7)
    torch.testing.assert_close(m[16:48].sum(1), torch.ones(32, dtype=torch.float64))


def test_rescale_agrees_with_torch_antialiased_bicubic_where_geometry_coincides():
    """Downscale 64 -> 32 (factor 1/2): torch maps output j to input 2j + 0.5, our operator
    maps canvas pixel p to c + 2(p - c); for p = 16 + j both are 2j + 0.5."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 64, 64, generator=g, dtype=torch.float64)
    ours = rescale(x, 0.5)[..., 16:48, 16:48]
    theirs = F.interpolate(x, size=(32, 32), mode="bicubic", antialias=True, align_corners=False)
    # torch renormalises truncated taps at the image border; compare away from it
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], theirs[..., 2:-2, 2:-2], rtol=1e-6, atol=1e-6)


def test_rescale_upscale_agrees_with_torch_bicubic_a_minus_half():
    """Upscale x2 of a 16 canvas inside a 32 canvas: interior agrees with antialias=True
    bicubic (A = -0.5; antialias does nothing when upscaling)."""
    g = torch.Generator().manual_seed(1)
    small = torch.randn(1, 1, 16, 16, generator=g, dtype=torch.float64)
    canvas = F.pad(small, (8, 8, 8, 8))
    ours = rescale(canvas, 2.0)
    theirs = F.interpolate(small, scale_factor=2, mode="bicubic", antialias=True, align_corners=False)
    torch.testing.assert_close(ours[..., 4:-4, 4:-4], theirs[..., 4:-4, 4:-4], rtol=1e-6, atol=1e-6)


def test_rescale_gaussian_blob_changes_width_by_factor():
    n = 65
    r = torch.arange(n, dtype=torch.float64) - 32
    blob = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * 6.0**2))
    out = rescale(blob, 0.7)
    expected = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * (6.0 * 0.7) ** 2))
    assert (out - expected).abs().max() < 5e-3


def test_rescale_rejects_bad_factor():
    with pytest.raises(ValueError, match="factor"):
        rescale(torch.zeros(1, 1, 8, 8), -1.0)


def test_translate_and_scale_shift():
    x = torch.arange(25.0).view(1, 1, 5, 5)
    y = translate(x, 1, -2)
    assert y[0, 0, 1, 0] == x[0, 0, 0, 2] and y[0, 0, 0].abs().sum() == 0 and y[0, 0, :, 3:].abs().sum() == 0
    h = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2)
    assert scale_shift(h, 1)[0, 0, :, 0, 0].tolist() == [1, 2, 3, 0]
    assert scale_shift(h, -1)[0, 0, :, 0, 0].tolist() == [0, 0, 1, 2]


def test_rescale_and_scale_shift_uses_per_slice_factors():
    g = torch.Generator().manual_seed(2)
    x = smooth_random_field((1, 1, 3, 32, 32), g)
    scales = [1.0, 1.5, 2.4]
    y = rescale_and_scale_shift(x, scales, 1)
    torch.testing.assert_close(y[:, :, 0], rescale(x[:, :, 1], 1.0 / 1.5))
    torch.testing.assert_close(y[:, :, 1], rescale(x[:, :, 2], 1.5 / 2.4))
    assert y[:, :, 2].abs().sum() == 0
    with pytest.raises(ValueError, match="scales"):
        rescale_and_scale_shift(x, [1.0, 2.0], 1)


def test_smooth_random_field_is_deterministic_and_zero_at_border():
    a = smooth_random_field((2, 1, 48, 48), torch.Generator().manual_seed(5))
    b = smooth_random_field((2, 1, 48, 48), torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert a[..., :4, :].abs().max() < 1e-3 * a.abs().max()
    assert math.isclose(float(a.flatten(-2).std(-1).mean()), 1.0, rel_tol=1e-6)


def test_rescale_corner_is_f_interpolate_on_a_zero_canvas():
    """The independent protocol's rescale: F.interpolate (bicubic, antialias) anchored at the
    top-left corner, written onto a zero canvas of the input's size; any leading shape."""

    from sesn.transforms import rescale_corner

    x = torch.randn(2, 3, 4, 40, 40, dtype=torch.float64)
    y = rescale_corner(x, 0.79)
    ref = F.interpolate(x.reshape(-1, 1, 40, 40), scale_factor=0.79, mode="bicubic", antialias=True)
    m = ref.shape[-1]  # floor(40 * 0.79) = 31
    assert y.shape == x.shape and m == 31
    torch.testing.assert_close(y.reshape(-1, 1, 40, 40)[..., :m, :m], ref)
    assert y[..., m:, :].abs().max() == 0 and y[..., :, m:].abs().max() == 0
    assert rescale_corner(x, 1.0) is x
    with pytest.raises(ValueError, match="positive and finite"):
        rescale_corner(x, 0.0)
