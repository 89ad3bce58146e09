import numpy as np
import pytest
import torch

from sesn.basis import BasisSpec, basis_array, basis_tensor, hermite_gaussian_1d, make_spec, order_pairs, paper_scales


def test_paper_scales_and_windows_of_mnist_ses_scalar_28():
    scales = paper_scales(4, 3.0, 1.7)
    assert scales == (1.7, 2.45, 3.54, 5.1)
    spec = make_spec(15, 7, scales, "B", mult=1.5)
    assert spec.windows == (5, 7, 11, 15)


def test_shape_and_dtype():
    spec = make_spec(15, 7, paper_scales(4, 3.0, 1.7), "B", mult=1.5)
    b = basis_array(spec)
    assert b.shape == (49, 4, 15, 15) and b.dtype == np.float64
    t = basis_tensor(spec, torch.float64)
    assert t.shape == (49, 4, 15, 15) and t.dtype == torch.float64
    assert torch.equal(t, torch.from_numpy(np.array(b)))


def test_hermite_is_probabilists():
    x = np.linspace(-3, 3, 13)
    # He_3(x) = x^3 - 3x
    expected = np.exp(-(x**2) / 2) * (x**3 - 3 * x)
    np.testing.assert_allclose(hermite_gaussian_1d(x, 3, 1.0), expected, atol=1e-14)
    # scale: g_{n,s}(x) = exp(-x^2/2s^2)/s He_n(x/s)
    np.testing.assert_allclose(hermite_gaussian_1d(x, 2, 2.0), np.exp(-(x**2) / 8) / 2 * ((x / 2) ** 2 - 1), atol=1e-14)


def test_order_and_axes_convention_basis_a():
    spec = make_spec(9, 3, (1.0, 1.5), "A")
    b = basis_array(spec)
    pairs = order_pairs(2)
    assert pairs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]  # (n_y, n_x), n_x fast
    m = spec.windows[0]  # int(9 * 1.0 / 1.5) = 6 -> odd 7
    grid = np.arange(m) - m // 2
    pad = (9 - m) // 2
    norms0 = []
    for idx, (ny, nx) in enumerate(pairs):
        f = np.outer(hermite_gaussian_1d(grid, nx, 1.0), hermite_gaussian_1d(grid, ny, 1.0))
        norms0.append(np.linalg.norm(f))
        np.testing.assert_allclose(b[idx, 0, pad : pad + m, pad : pad + m], f / norms0[-1], atol=1e-12)
    # index 1 is (n_y=0, n_x=1): odd along the height axis (u), even along the width axis (v)
    f1 = b[1, 1]
    np.testing.assert_allclose(f1, -f1[::-1, :], atol=1e-12)
    np.testing.assert_allclose(f1, f1[:, ::-1], atol=1e-12)


def test_normalised_by_smallest_scale_only():
    spec = make_spec(15, 7, paper_scales(4, 3.0, 1.7), "B", mult=1.5)
    b = basis_array(spec)
    norms = np.sqrt((b**2).sum(axis=(2, 3)))
    np.testing.assert_allclose(norms[:, 0], 1.0, atol=1e-12)
    assert not np.allclose(norms[:, 3], 1.0)  # other scales keep the sigma^-2 relation


def test_window_zero_padding():
    spec = make_spec(15, 7, paper_scales(4, 3.0, 1.7), "A")
    b = basis_array(spec)
    for s, m in enumerate(spec.windows):
        pad = (15 - m) // 2
        mask = np.ones((15, 15), bool)
        mask[pad : pad + m, pad : pad + m] = False
        assert np.all(b[:, s][:, mask] == 0)
        assert np.any(b[:, s][:, ~mask] != 0)


def test_basis_b_subscales_and_truncation():
    spec = make_spec(15, 7, paper_scales(4, 3.0, 1.7), "B", mult=1.5, max_order=4)
    b = basis_array(spec)
    pairs = order_pairs(4, 4)
    assert len(pairs) == 15 and all(nx + ny <= 4 for ny, nx in pairs)
    # function 15 is the first of the second sub-scale: (0, 0) at sigma / mult
    m = spec.windows[-1]
    grid = np.arange(m) - m // 2
    sigma = 5.1 / 1.5
    f = np.outer(hermite_gaussian_1d(grid, 0, sigma), hermite_gaussian_1d(grid, 0, sigma))
    g = b[15, 3]
    np.testing.assert_allclose(g / np.linalg.norm(g), f / np.linalg.norm(f), atol=1e-12)
    assert b.shape[0] == 49  # 4 sub-scales x 15 = 60, truncated to 49


def test_cached_and_hashable():
    s1 = make_spec(7, 3, [0.9, 1.27, 1.79], "A")
    s2 = BasisSpec(7, 3, (0.9, 1.27, 1.79), "a")
    assert s1 == s2 and hash(s1) == hash(s2)
    assert basis_array(s1) is basis_array(s2)
    assert not basis_array(s1).flags.writeable


@pytest.mark.parametrize(
    "kwargs, param",
    [
        (dict(kernel_size=7, effective_size=3, scales=()), "scales"),
        (dict(kernel_size=7, effective_size=3, scales=(2.0, 1.0)), "scales"),
        (dict(kernel_size=7, effective_size=3, scales=(1.0, 1.0)), "scales"),
        (dict(kernel_size=7, effective_size=3, scales=(-1.0, 1.0)), "scales"),
        (dict(kernel_size=8, effective_size=3, scales=(1.0,)), "kernel_size"),
        (dict(kernel_size=0, effective_size=3, scales=(1.0,)), "kernel_size"),
        (dict(kernel_size=-3, effective_size=3, scales=(1.0,)), "kernel_size"),
        (dict(kernel_size=5, effective_size=7, scales=(1.0,)), "effective_size"),
        (dict(kernel_size=5, effective_size=0, scales=(1.0,)), "effective_size"),
        (dict(kernel_size=5, effective_size=3, scales=(1.0, 4.0)), "scales"),  # window collapses to 1 px
        (dict(kernel_size=5, effective_size=3, scales=(1.0,), basis_type="C"), "basis_type"),
    ],
)
def test_invalid_specs_name_the_parameter(kwargs, param):
    with pytest.raises(ValueError, match=param):
        make_spec(**kwargs)


def test_unknown_basis_kwarg():
    with pytest.raises(ValueError, match="unknown basis arguments"):
        make_spec(7, 3, (1.0,), "B", multt=1.2)


def test_optimized_basis_shape_normalisation_determinism_and_disk_cache(tmp_path, monkeypatch):
    from sesn.basis import optimized

    monkeypatch.setenv("SESN_CACHE", str(tmp_path))
    spec = make_spec(9, 3, (1.0, 1.26, 1.59, 2.0), "D")
    a = optimized.solve(spec)
    b = optimized.solve(spec)
    assert a.shape == (9, 4, 9, 9) and np.array_equal(a, b)
    np.testing.assert_allclose(np.sqrt((a[:, 0] ** 2).sum(axis=(1, 2))), 1.0, atol=1e-12)
    # scale 0 is the Hermite basis A; the other scales live in their windows
    np.testing.assert_allclose(a[:, 0], basis_array(make_spec(9, 3, (1.0, 1.26, 1.59, 2.0), "A"))[:, 0])
    optimized.optimized_basis.cache_clear()
    c = optimized.optimized_basis(spec)
    assert np.array_equal(c, a) and len(list(tmp_path.glob("bases/*.npy"))) == 1


def test_optimized_basis_beats_hermite_at_the_paper_scales():
    """Measured: at mnist_ses_scalar_28's scales, T->H Delta (smooth fields, step 1/2/3)
    A 1.0e-2 / 4.2e-3 / 2.8e-3, B 1.1e-2 / 2.7e-2 / 8.1e-2, D 3.6e-4 / 4.5e-4 / 4.6e-4."""
    from sesn.equivariance import scale_equivariance
    from sesn.nn import SESConv_Z2_H
    from sesn.transforms import smooth_random_field

    x = smooth_random_field((4, 1, 64, 64), torch.Generator().manual_seed(0), blur=1.5)
    scales = [1.7, 2.45, 3.54, 5.1]
    deltas = {}
    for bt, kw in (("A", {}), ("B", {"mult": 1.5}), ("D", {})):
        torch.manual_seed(0)
        layer = SESConv_Z2_H(1, 4, 15, 7, scales, padding=7, basis_type=bt, **kw).double()
        deltas[bt] = [scale_equivariance(layer, x, t).delta for t in (1, 2, 3)]
    assert max(deltas["D"]) <= 1e-3
    assert all(d < a and d < b for d, a, b in zip(deltas["D"], deltas["A"], deltas["B"]))


def test_basis_r_span_dilation_cache_key_and_validation(tmp_path, monkeypatch):
    """Basis R: scale 0 is the Hermite B functions at span_sigma (default 1.9 sigma_0) on the
    scale-0 window, unit norm; integer ratios are the dilated scale-0 functions; the default
    span is resolved in the disk-cache key (a changed default cannot reuse an old file)."""
    from sesn.basis import optimized
    from sesn.basis.hermite import _functions_on_window, _terms_for_scale
    from sesn.basis.spec import R_SPAN_RATIO

    monkeypatch.setenv("SESN_CACHE", str(tmp_path))
    scales = (1.0, 1.26, 1.59, 2.0)
    spec = make_spec(15, 7, scales, "R", mult=1.5)
    a = optimized.solve(spec)
    assert a.shape == (49, 4, 15, 15) and np.array_equal(a, optimized.solve(spec))
    assert spec.span == R_SPAN_RATIO * 1.0
    m0 = spec.windows[0]
    w = _functions_on_window(m0, _terms_for_scale(make_spec(15, 7, scales, "B", mult=1.5), spec.span))
    w = w / np.sqrt((w**2).sum(axis=(1, 2)))[:, None, None]
    c = (15 - m0) // 2
    np.testing.assert_allclose(a[:, 0, c : c + m0, c : c + m0], w, atol=1e-12)
    # scale 2.0 = 2 x sigma_0: the scale-0 functions with taps on every 2nd pixel
    dil = np.zeros((49, 15, 15))
    idx = 7 + 2 * (np.arange(m0) - m0 // 2)
    dil[:, idx[:, None], idx[None, :]] = w
    np.testing.assert_allclose(a[:, 3], dil, atol=1e-12)
    # the default equals the explicit span; another span gives another basis and another file
    explicit = optimized.solve(make_spec(15, 7, scales, "R", mult=1.5, span_sigma=R_SPAN_RATIO))
    np.testing.assert_array_equal(a, explicit)
    at_sigma0 = make_spec(15, 7, scales, "R", mult=1.5, span_sigma=1.0)
    assert optimized._key(at_sigma0) != optimized._key(spec)
    assert not np.allclose(optimized.solve(at_sigma0), a)
    with pytest.raises(ValueError, match="span_sigma applies to basis 'R' or 'W' only"):
        make_spec(15, 7, scales, "D", span_sigma=1.9)
    with pytest.raises(ValueError, match="span_sigma must be positive"):
        make_spec(15, 7, scales, "R", span_sigma=-1.0)
    with pytest.raises(ValueError, match="mult must be > 1"):
        make_spec(15, 7, scales, "R", mult=1.0)


def test_basis_r_beats_d_and_disco_after_a_relu():
    """The point of basis R (measured, results/equivariance/equivariance.md section 'Stacks'):
    after a ReLU its error is far below D's. T->ReLU->H, 4 channels, smooth fields (blur 1.5),
    step 1: at DISCO's scales D 5.8e-3, R 5.1e-4; at mnist_ses_scalar_28's D 1.3e-3, R 3.2e-4."""
    from types import SimpleNamespace

    from sesn.equivariance import scale_equivariance
    from sesn.models.method_layers import ses_stack
    from sesn.transforms import smooth_random_field

    x = smooth_random_field((4, 1, 64, 64), torch.Generator().manual_seed(0), blur=1.5)
    for scales, ratio in (([1.0, 1.26, 1.59, 2.0], 5.0), ([1.7, 2.45, 3.54, 5.1], 2.0)):
        cfg = SimpleNamespace(kernel_size=15, effective_size=7, scales=scales, mult=1.5, max_order=4)
        deltas = {}
        for basis in "DR":
            torch.manual_seed(0)
            stack = ses_stack(2, 4, cfg, basis).double().eval()
            deltas[basis] = scale_equivariance(stack, x, 1).delta
        assert deltas["R"] <= 1e-3 and deltas["R"] * ratio <= deltas["D"], (scales, deltas)


# --- DISCO's published basis (its data file is not shipped: tests skip without it) -----------


def _disco_spec(**kw):
    from sesn.basis import make_spec

    return make_spec(15, 7, [1.0, 1.26, 1.59, 2.0], "DISCO", mult=1.5, **kw)


def _disco_file():
    from sesn.basis.disco import DiscoBasisError, find_file

    try:
        return find_file(_disco_spec())
    except DiscoBasisError:
        pytest.skip("DISCO's basis file not found (sesn.basis.disco)")


def test_disco_basis_is_w_times_proxy_normalised_at_scale_0():
    from sesn.basis import basis_array
    from sesn.basis.disco import hermite_matrix, load_proxy

    _disco_file()
    spec = _disco_spec()
    basis = basis_array(spec)
    assert basis.shape == (49, 4, 15, 15)
    assert np.allclose(np.sqrt((basis[:, 0] ** 2).sum(axis=(-2, -1))), 1.0)
    # by hand: W @ P for one function, then the same normalisation
    w, p = hermite_matrix(spec), load_proxy(spec)
    f = np.tensordot(w[5], p, axes=(0, 0))
    assert np.allclose(basis[5], f / np.sqrt((f[0] ** 2).sum()))
    # the Hermite matrix is the B-style multi-scale set at sigma_min 1.9 (sub-scales 1.9 / 1.5**m)
    # on the 7x7 grid; measured: rank 45 -- at the sub-pixel sub-scales 4 of the 49 functions
    # are combinations of the others, so DISCO's layer basis spans 45 functions, not 49
    assert np.linalg.matrix_rank(w) == 45


def test_disco_basis_is_exact_at_its_integer_ratio():
    from sesn.equivariance import scale_equivariance
    from sesn.nn import SESConv_Z2_H
    from sesn.transforms import smooth_random_field

    _disco_file()
    torch.manual_seed(0)
    layer = SESConv_Z2_H(1, 4, 15, 7, [1.0, 1.26, 1.59, 2.0], padding=7, basis_type="DISCO", mult=1.5).double()
    x = smooth_random_field((2, 1, 64, 64), torch.Generator().manual_seed(0), blur=1.5)
    assert scale_equivariance(layer, x, 3).delta < 1e-12  # sigma 2 = the dilated sigma-1 deltas: exact up to borders
    assert scale_equivariance(layer, x, 1).delta > 1e-5  # the fitted scales are approximate


def test_disco_basis_file_errors(tmp_path, monkeypatch):
    from sesn.basis import basis_array
    from sesn.basis.disco import DiscoBasisError, file_name

    spec = _disco_spec(disco_sigma=1.8)  # a spec of its own: nothing cached
    monkeypatch.setenv("SESN_DISCO_DIR", str(tmp_path))
    monkeypatch.setattr("sesn.basis.disco.search_dirs", lambda: [tmp_path])
    with pytest.raises(DiscoBasisError, match="not found in"):
        basis_array(spec)
    (tmp_path / file_name(spec)).write_bytes(b"not a tensor")
    with pytest.raises(DiscoBasisError, match="cannot be read as a tensor"):
        basis_array(spec)
    torch.save(torch.zeros(49, 4, 15, 15), tmp_path / file_name(spec))
    with pytest.raises(DiscoBasisError, match="dilated by 1"):
        basis_array(spec)
    torch.save(torch.zeros(9, 4, 15, 15), tmp_path / file_name(spec))
    with pytest.raises(DiscoBasisError, match="expected a tensor of shape"):
        basis_array(spec)


@pytest.mark.parametrize("scales", [(1.7, 2.45, 3.54, 5.1), (1.0, 1.26, 1.59, 2.0)])
def test_basis_w_is_r_mixed_by_one_matrix_at_every_scale(scales):
    """W_s = M R_s with the same M at every scale (so every W kernel is the R kernel with the
    same weights mixed, and keeps R's equivariance), and M re-weights R's scale-0 singular
    values sigma_i to sigma_i ** (1 - p) (up to one constant)."""
    from sesn.basis import optimized
    from sesn.basis.whitened import mixing_matrix, whitened_basis

    r = optimized.optimized_basis(make_spec(15, 7, scales, "R", mult=1.5))
    for p in (0.0, 0.5, 1.0):
        w = whitened_basis(make_spec(15, 7, scales, "W", mult=1.5, whiten=p))
        m = mixing_matrix(r[:, 0], p)
        for j in range(len(scales)):  # one M for all scales: W_s = M R_s
            np.testing.assert_allclose(w[:, j], np.einsum("ij,jkl->ikl", m, r[:, j]), atol=1e-12)
        s_r = np.linalg.svd(r[:, 0].reshape(49, -1), compute_uv=False)
        s_w = np.linalg.svd(w[:, 0].reshape(49, -1), compute_uv=False)
        keep = s_r > 1e-9 * s_r[0]
        ratio = s_w[keep] / (s_r[keep] / s_r[0]) ** (1 - p)
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)
    # whiten=None is the default power; W at power 0 is R up to one constant
    default = whitened_basis(make_spec(15, 7, scales, "W", mult=1.5))
    np.testing.assert_array_equal(default, whitened_basis(make_spec(15, 7, scales, "W", mult=1.5, whiten=0.5)))
    w0 = whitened_basis(make_spec(15, 7, scales, "W", mult=1.5, whiten=0.0))
    np.testing.assert_allclose(w0 / (w0**2).sum() ** 0.5, r / (r**2).sum() ** 0.5, atol=1e-12)
    with pytest.raises(ValueError, match="whiten must be in"):
        make_spec(15, 7, scales, "W", whiten=1.5)
    with pytest.raises(ValueError, match="whiten applies to basis 'W' only"):
        make_spec(15, 7, scales, "R", whiten=0.5)
