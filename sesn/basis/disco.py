"""DISCO's own published basis ("disco_b"), read from its data file, basis_type "DISCO".

DISCO (docs/optimised-basis.md) publishes a *proxy* basis P ``[n*n, S, k, k]`` (n = the
effective size): at integer scales the n x n pixel deltas, dilated by the scale; at the
other scales functions DISCO fitted by gradient descent for equivariance. Its layers use
``basis = W @ P``, W ``[n*n, n*n]`` the multi-scale Hermite functions on the n x n grid
(sub-scales ``disco_sigma / mult**m``, all orders ``n_x + n_y <= max_order``, the first
n*n of them), each function then divided by its L2 norm at scale 0.

The tensor files are DISCO's data (MIT); they are not shipped in this package. They are
looked up by name, ``size={k}_eff_size={n}_scales=[...].pt``, in ``$SESN_DISCO_DIR`` and
then ``datasets/disco/`` of the repository (or of the current folder); a missing or
malformed file raises :class:`DiscoBasisError` saying where it was looked for.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from sesn import settings
from sesn.basis.hermite import _functions_on_window, order_pairs
from sesn.basis.spec import BasisSpec

REPO = Path(__file__).resolve().parents[2]


class DiscoBasisError(FileNotFoundError):
    """DISCO's basis file is missing or not what its name says."""


def file_name(spec: BasisSpec) -> str:
    scales = ", ".join(f"{s:g}" if s != int(s) else f"{s:.1f}" for s in spec.scales)
    return f"size={spec.kernel_size}_eff_size={spec.effective_size}_scales=[{scales}].pt"


def search_dirs() -> list[Path]:
    dirs = [settings.disco_dir()] if settings.disco_dir() is not None else []
    # the copy this repository carries (DISCO's licence beside it), for a checkout's own reports
    dirs += [REPO / "datasets" / "disco", Path.cwd() / "datasets" / "disco", REPO / "tests" / "data" / "disco"]
    return list(dict.fromkeys(d.resolve() for d in dirs))  # each folder once


def find_file(spec: BasisSpec) -> Path:
    name = file_name(spec)
    for d in search_dirs():
        if (d / name).is_file():
            return d / name
    raise DiscoBasisError(
        f"DISCO's basis file {name!r} not found in {[str(d) for d in search_dirs()]}; put DISCO's published "
        "precalculated basis there (or set SESN_DISCO_DIR). DISCO publishes it for kernel 15, effective size 7, "
        "scales [1.0, 1.26, 1.59, 2.0] and kernel 5, effective size 3, scales [1.0, 1.41, 2.0]"
    )


def load_proxy(spec: BasisSpec) -> np.ndarray:
    """DISCO's proxy basis P ``[n*n, S, k, k]`` (float64), checked against its name."""
    import torch

    path = find_file(spec)
    try:
        proxy = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise DiscoBasisError(f"{path}: cannot be read as a tensor ({e})") from None
    n, k, s = spec.effective_size, spec.kernel_size, spec.num_scales
    if not isinstance(proxy, torch.Tensor) or tuple(proxy.shape) != (n * n, s, k, k):
        raise DiscoBasisError(
            f"{path}: expected a tensor of shape {[n * n, s, k, k]}, got {getattr(proxy, 'shape', type(proxy))}"
        )
    proxy = proxy.double().numpy()
    if not np.isfinite(proxy).all():
        raise DiscoBasisError(f"{path}: contains non-finite values")
    # at integer scales the proxy must be the n x n deltas dilated by the scale
    c, r = k // 2, n // 2
    for j, sigma in enumerate(spec.scales):
        if float(sigma).is_integer():
            d = int(sigma)
            expected = np.zeros((n * n, k, k))
            for p in range(n * n):
                expected[p, c + d * (p // n - r), c + d * (p % n - r)] = 1.0
            if not np.allclose(proxy[:, j], expected, atol=1e-6):
                raise DiscoBasisError(f"{path}: scale {sigma} should hold the {n}x{n} deltas dilated by {d}")
    return proxy


def hermite_matrix(spec: BasisSpec) -> np.ndarray:
    """W ``[n*n, n*n]``: multi-scale Hermite functions sampled on the n x n grid."""
    n = spec.effective_size
    pairs = order_pairs(spec.max_order, spec.max_order)
    terms, m = [], 0
    while len(terms) < n * n:
        terms.extend((ny, nx, spec.disco_sigma / spec.mult**m) for ny, nx in pairs)
        m += 1
    return _functions_on_window(n, terms[: n * n]).reshape(n * n, n * n)


@functools.lru_cache(maxsize=16)
def disco_basis(spec: BasisSpec) -> np.ndarray:
    """DISCO's layer basis ``[n*n, S, k, k]`` (read-only float64)."""
    proxy = load_proxy(spec)
    basis = (hermite_matrix(spec) @ proxy.reshape(proxy.shape[0], -1)).reshape(proxy.shape)
    norm = np.sqrt((basis[:, 0] ** 2).sum(axis=(-2, -1)))
    basis = basis / norm[:, None, None, None]
    basis.setflags(write=False)
    return basis
