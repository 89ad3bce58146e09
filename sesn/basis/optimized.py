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

Basis "R" (``basis_type="R"``) is the same solve with two changes measured to lower the
error *after nonlinearities* (docs/optimised-basis.md): the scale-0 span is the Hermite
"B" functions (sub-scales ``span_sigma / mult**j``, orders ``nx + ny <= max_order``; by
default span_sigma = 1.9 sigma_0, DISCO's ratio), which are smoother than A's orders up to
effective_size - 1; and the random inputs of the solve are *rectified*
smooth noise (white noise blurred by a Gaussian of 1, 2 or 3 px, ReLU, unit std) -- what a
layer after a ReLU sees -- instead of white noise. Integer ratios to sigma_0 are always
dilated.

Results are cached in memory and on disk (``$SESN_CACHE`` or ``~/.cache/sesn/bases``,
outside the package), keyed by the spec, the algorithm version and a hash of the solver's
source (so an edited solver, or a planted bug in it, is never masked by an old file).
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

from sesn import settings, transforms
from sesn.basis import hermite
from sesn.basis.hermite import _functions_on_window, _terms_for_scale, hermite_basis
from sesn.basis.spec import BasisSpec
from sesn.transforms import rescale_matrix

ALGORITHM_VERSION = 1
NUM_IMAGES = 64
RIDGE = 1e-6
SEED = 0
# basis "R": rectified smooth noise, the blur (px) cycling over the images
R_NUM_IMAGES = 96
R_FIT_BLURS = (1.0, 2.0, 3.0)


def cache_dir() -> Path:
    return settings.cache_dir() / "bases"


@functools.lru_cache(maxsize=1)
def _source_hash() -> str:
    """Hash of the code the solve depends on (this file, the Hermite functions, the rescale):
    an edited solver never reads a basis cached by another version of it."""

    h = hashlib.sha256()
    for module in (__file__, hermite.__file__, transforms.__file__):
        h.update(Path(module).read_bytes())
    return h.hexdigest()[:16]


def _key(spec: BasisSpec) -> str:
    if spec.basis_type == "D":
        fit = {"n": NUM_IMAGES}
    else:  # the resolved span sigma: a change of the default must not reuse an old file
        fit = {"n": R_NUM_IMAGES, "blurs": list(R_FIT_BLURS), "span": spec.span}
    blob = json.dumps(
        {
            "spec": dataclasses.asdict(spec),
            "v": ALGORITHM_VERSION,
            "src": _source_hash(),
            "ridge": RIDGE,
            "seed": SEED,
            **fit,
        },
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


def span_functions(spec: BasisSpec) -> np.ndarray:
    """The fixed functions at the smallest scale, ``[N_b, m_0, m_0]`` on its window, unit L2
    norm: Hermite A at sigma_0 (basis "D"); Hermite B at ``spec.span`` (basis "R")."""
    m0 = spec.windows[0]
    if spec.basis_type == "D":
        base = hermite_basis(dataclasses.replace(spec, basis_type="A"))  # normalised at scale 0
        c0 = (spec.kernel_size - m0) // 2
        return np.array(base[:, 0, c0 : c0 + m0, c0 : c0 + m0])
    if spec.basis_type != "R":
        raise ValueError(f"optimised bases are 'D' and 'R', got {spec.basis_type!r}")
    sigma = spec.span
    b_spec = dataclasses.replace(spec, basis_type="B", span_sigma=None)
    w = _functions_on_window(m0, _terms_for_scale(b_spec, sigma))
    norms = np.sqrt((w**2).sum(axis=(-2, -1)))
    if np.any(norms == 0):
        raise ValueError(f"a span function vanishes on the {m0}x{m0} window at span_sigma {sigma}")
    return w / norms[:, None, None]


def _blur(f: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(np.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=f.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    x = F.conv2d(f[None, None], g.view(1, 1, 1, -1), padding=(0, r))
    return F.conv2d(x, g.view(1, 1, -1, 1), padding=(r, 0))[0, 0]


def fit_images(spec: BasisSpec, size: int):
    """The random images of the solve (deterministic): white noise for "D"; rectified smooth
    noise for "R"."""
    g = torch.Generator().manual_seed(SEED)
    if spec.basis_type == "D":
        for _ in range(NUM_IMAGES):
            yield torch.randn(size, size, generator=g, dtype=torch.float64)
        return
    for n in range(R_NUM_IMAGES):
        f = torch.randn(size, size, generator=g, dtype=torch.float64)
        f = F.relu(_blur(f, R_FIT_BLURS[n % len(R_FIT_BLURS)]))
        yield f / f.std()


@dataclasses.dataclass
class NormalEquations:
    """The linear system an optimised basis solves: ``h @ x = rhs``, ``x`` the free scales'
    functions stacked (``x[offsets[j] : offsets[j] + m_j**2]`` = scale j's ``[m_j**2, N_b]``)."""

    fixed: dict  # scale index -> functions on its window [N_b, m, m] (scale 0 and dilations)
    free: list  # scale indices solved for
    offsets: dict  # scale index -> first row of its block
    h: torch.Tensor | None  # [dim, dim], ridge included (None when nothing is free)
    rhs: torch.Tensor | None  # [dim, N_b]


def normal_equations(spec: BasisSpec) -> NormalEquations:
    """The fixed functions of ``spec`` and the normal equations of its free scales."""

    k, s_count, windows, scales = spec.kernel_size, spec.num_scales, spec.windows, spec.scales
    w0 = span_functions(spec)
    nb = w0.shape[0]
    m0 = windows[0]
    fixed = {0: w0}  # scale index -> functions on its window [N_b, m, m]
    if spec.dilate_integer or spec.basis_type == "R":
        for j in range(1, s_count):
            d = integer_ratio(scales[j], scales[0])
            if d is not None and d * (m0 - 1) + 1 <= windows[j]:
                fixed[j] = dilate(w0, d, windows[j])
    free = [j for j in range(s_count) if j not in fixed]
    if not free:
        return NormalEquations(fixed, free, {}, None, None)
    size = 3 * k + 1
    crop = k
    offsets = dict(zip(free, np.cumsum([0] + [windows[j] ** 2 for j in free])))
    dim = int(sum(windows[j] ** 2 for j in free))
    h = torch.zeros(dim, dim, dtype=torch.float64)
    rhs = torch.zeros(dim, nb, dtype=torch.float64)
    sl = lambda j: slice(int(offsets[j]), int(offsets[j]) + windows[j] ** 2)  # noqa: E731
    kfix = {j: torch.tensor(w.reshape(nb, -1).T) for j, w in fixed.items()}  # [m^2, N_b]
    pairs = [(i, j) for i in range(s_count) for j in range(i + 1, s_count)]
    rescales = {(i, j): rescale_matrix(size, scales[i] / scales[j]) for i, j in pairs}
    for f in fit_images(spec, size):
        for i in range(s_count):
            for j in range(i + 1, s_count):
                if i in fixed and j in fixed:
                    continue
                r = rescales[(i, j)]
                inner = slice(crop, size - crop)
                # A k_i = crop(conv(L_a f, k_i)); B k_j = crop(L_a conv(f, k_j))
                lf = r @ f @ r.T
                amat = _im2col(lf, windows[i]).view(size, size, -1)[inner, inner].reshape(-1, windows[i] ** 2)
                cols = _im2col(f, windows[j]).T.reshape(-1, size, size)  # [m_j^2, N, N] shifted copies
                bmat = (r @ cols @ r.T)[:, inner, inner].reshape(windows[j] ** 2, -1).T
                # residual A k_i - B k_j; fixed kernels move to the right-hand side
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
    return NormalEquations(fixed, free, {j: int(offsets[j]) for j in free}, h, rhs)


def solve(spec: BasisSpec) -> np.ndarray:
    """The optimised basis ``[N_b, S, k, k]`` (float64) of a "D" or "R" spec."""
    eq = normal_equations(spec)
    nb, windows = eq.fixed[0].shape[0], spec.windows
    if not eq.free:
        return _assemble(nb, eq.fixed, {}, spec)
    sol = torch.linalg.solve(eq.h, eq.rhs)  # [dim, N_b]
    solved = {
        j: sol[eq.offsets[j] : eq.offsets[j] + windows[j] ** 2].T.reshape(nb, windows[j], windows[j]).numpy()
        for j in eq.free
    }
    return _assemble(nb, eq.fixed, solved, spec)


def _assemble(nb, fixed, solved, spec) -> np.ndarray:
    k = spec.kernel_size
    out = np.zeros((nb, spec.num_scales, k, k))
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
