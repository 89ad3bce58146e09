"""Optimised discrete basis (DISCO-style, docs/optimised-basis.md), basis_type "D".

The functions at the smallest scale are the Hermite basis "A" at sigma_0 (normalised to
unit norm there). With ``dilate_integer=True``, at every scale whose ratio d to sigma_0 is
an integer the functions are the scale-0 ones dilated by d (exactly equivariant to
decimation by d on the grid, as DISCO does for integer ratios). The functions at every
other scale are *solved for*: they minimise the
equivariance error of the T->H layer summed over all scale pairs i < j,

    sum_{i<j} E_f || crop( conv(L_a f, k_i) - L_a conv(f, k_j) ) ||^2,   a = sigma_i / sigma_j,

with L_a the measurement's rescale (Keys cubic, antialiased, about the centre; see
:mod:`sesn.transforms`) and f white noise. With k_0 fixed, the objective is quadratic in
(k_1, ..., k_{S-1}) (each k_j restricted to its window), so the optimum is one linear
solve of the normal equations — accumulated from random white-noise images (fixed seed,
so the result is deterministic) — with a small Tikhonov term. Every basis function uses the
same normal matrix, so all of them are solved at once. Takes seconds on 2 CPU cores
(DISCO's published gradient-descent procedure: hours).

Results are cached in memory and on disk (``$SESN_CACHE`` or ``~/.cache/sesn/bases``,
outside the package), keyed by the spec and the algorithm version.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sesn.basis.hermite import hermite_basis
from sesn.basis.spec import BasisSpec

ALGORITHM_VERSION = 1
NUM_IMAGES = 64
RIDGE = 1e-6
SEED = 0


def cache_dir() -> Path:
    return Path(os.environ.get("SESN_CACHE", Path.home() / ".cache" / "sesn")) / "bases"


def _key(spec: BasisSpec) -> str:
    blob = json.dumps(
        {"spec": dataclasses.asdict(spec), "v": ALGORITHM_VERSION, "n": NUM_IMAGES, "ridge": RIDGE, "seed": SEED},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _im2col(x: torch.Tensor, m: int) -> torch.Tensor:
    """[N, N] image -> [N*N, m*m] patches (zero padded, 'same')."""
    n = x.shape[-1]
    cols = F.unfold(x.view(1, 1, n, n), m, padding=m // 2)  # [1, m*m, N*N]
    return cols[0].T


def integer_ratio(scale: float, base: float) -> int | None:
    r = scale / base
    d = int(round(r))
    return d if d >= 2 and abs(r - d) < 1e-9 else None


def dilate(window_functions: np.ndarray, d: int, size: int) -> np.ndarray:
    """``[N, m, m]`` functions -> ``[N, size, size]`` with tap t placed at d*t (centred)."""
    n, m, _ = window_functions.shape
    out = np.zeros((n, size, size))
    c, h = size // 2, m // 2
    idx = c + d * (np.arange(m) - h)
    if idx.min() < 0 or idx.max() >= size:
        raise ValueError(f"a {m}-tap function dilated by {d} does not fit a {size}-px window")
    out[:, idx[:, None], idx[None, :]] = window_functions
    return out


def solve(spec: BasisSpec) -> np.ndarray:
    """The optimised basis ``[N_b, S, k, k]`` (float64)."""
    from sesn.transforms import rescale_matrix

    hermite_spec = dataclasses.replace(spec, basis_type="A")
    base = hermite_basis(hermite_spec)  # normalised at scale 0
    k, s_count, windows, scales = spec.kernel_size, spec.num_scales, spec.windows, spec.scales
    nb = base.shape[0]
    if s_count == 1:
        return np.array(base)
    m0 = windows[0]
    c0 = (k - m0) // 2
    w0 = base[:, 0, c0 : c0 + m0, c0 : c0 + m0]
    fixed = {0: w0}  # scale index -> functions on its window [N_b, m, m]
    if spec.dilate_integer:
        for j in range(1, s_count):
            d = integer_ratio(scales[j], scales[0])
            if d is not None and d * (m0 - 1) + 1 <= windows[j]:
                fixed[j] = dilate(w0, d, windows[j])
    free = [j for j in range(s_count) if j not in fixed]
    if not free:
        return _assemble(base, fixed, {}, spec)
    size = 3 * k + 1
    crop = k
    offsets = dict(zip(free, np.cumsum([0] + [windows[j] ** 2 for j in free])))
    dim = int(sum(windows[j] ** 2 for j in free))
    h = torch.zeros(dim, dim, dtype=torch.float64)
    rhs = torch.zeros(dim, nb, dtype=torch.float64)
    g = torch.Generator().manual_seed(SEED)
    sl = lambda j: slice(int(offsets[j]), int(offsets[j]) + windows[j] ** 2)  # noqa: E731
    kfix = {j: torch.tensor(w.reshape(nb, -1).T) for j, w in fixed.items()}  # [m^2, N_b]
    for _ in range(NUM_IMAGES):
        f = torch.randn(size, size, generator=g, dtype=torch.float64)
        for i in range(s_count):
            for j in range(i + 1, s_count):
                a = scales[i] / scales[j]
                r = rescale_matrix(size, a)
                inner = slice(crop, size - crop)
                # A k_i = crop(conv(L_a f, k_i)); B k_j = crop(L_a conv(f, k_j))
                lf = r @ f @ r.T
                amat = _im2col(lf, windows[i]).view(size, size, -1)[inner, inner].reshape(-1, windows[i] ** 2)
                cols = _im2col(f, windows[j]).T.reshape(-1, size, size)  # [m_j^2, N, N] shifted copies
                bmat = (r @ cols @ r.T)[:, inner, inner].reshape(windows[j] ** 2, -1).T
                # residual A k_i - B k_j; fixed kernels move to the right-hand side
                if i in fixed and j in fixed:
                    continue
                if i in fixed:
                    h[sl(j), sl(j)] += bmat.T @ bmat
                    rhs[sl(j)] += bmat.T @ (amat @ kfix[i])
                elif j in fixed:
                    h[sl(i), sl(i)] += amat.T @ amat
                    rhs[sl(i)] += amat.T @ (bmat @ kfix[j])
                else:
                    h[sl(i), sl(i)] += amat.T @ amat
                    h[sl(j), sl(j)] += bmat.T @ bmat
                    h[sl(i), sl(j)] -= amat.T @ bmat
                    h[sl(j), sl(i)] -= bmat.T @ amat
    h += RIDGE * torch.trace(h) / dim * torch.eye(dim, dtype=torch.float64)
    sol = torch.linalg.solve(h, rhs)  # [dim, N_b]
    solved = {j: sol[sl(j)].T.reshape(nb, windows[j], windows[j]).numpy() for j in free}
    return _assemble(base, fixed, solved, spec)


def _assemble(base, fixed, solved, spec) -> np.ndarray:
    k = spec.kernel_size
    out = np.zeros((base.shape[0], spec.num_scales, k, k))
    for j, w in {**fixed, **solved}.items():
        m = spec.windows[j]
        c = (k - m) // 2
        out[:, j, c : c + m, c : c + m] = w
    return out


@functools.lru_cache(maxsize=64)
def optimized_basis(spec: BasisSpec) -> np.ndarray:
    path = cache_dir() / f"{_key(spec)}.npy"
    try:
        arr = np.load(path)
        if arr.shape == (spec.num_funcs, spec.num_scales, spec.kernel_size, spec.kernel_size):
            arr.setflags(write=False)
            return arr
    except (OSError, ValueError):
        pass
    arr = solve(spec)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, arr)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: keep the in-memory cache only
    arr.setflags(write=False)
    return arr
