"""Exact anchors: the Hermite bases rebuilt from their analytic definition, independently of
the library (SciPy's probabilists' Hermite polynomials, not the library's NumPy ones).

At every scale sigma_i the sampled function of basis "A" is

    psi_b(u, v; sigma_i) = N_b * sigma_i**-2 * He_{n_x}(u / sigma_i) He_{n_y}(v / sigma_i)
                           * exp(-(u**2 + v**2) / (2 sigma_i**2))

on the scale's centred window (zero outside), with N_b one over the function's L2 norm at
sigma_0; basis "B" uses the sub-scales sigma_i / mult**j (orders n_x + n_y <= max_order,
repeated per sub-scale until N_b functions). The checks compare at 1e-12 relative to the
largest value, in float64: a sigma error of 1 % at any scale changes the samples by about
2 % of their size, so no tolerance decides.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import eval_hermitenorm

EXACT = 1e-12


def _terms(cfg) -> list[tuple[int, int, int]]:
    """(n_x, n_y, sub-scale index j) of each basis function, in the reference's order:
    (n_y, n_x) row-major with n_y slow."""
    max_order = getattr(cfg, "max_order", 4)
    n_funcs = cfg.effective_size**2
    if cfg.basis_type == "A":
        o = cfg.effective_size
        return [(nx, ny, 0) for ny in range(o) for nx in range(o)]
    per = [(nx, ny) for ny in range(max_order + 1) for nx in range(max_order + 1) if nx + ny <= max_order]
    terms, j = [], 0
    while len(terms) < n_funcs:
        terms += [(nx, ny, j) for nx, ny in per]
        j += 1
    return terms[:n_funcs]


def analytic_basis(cfg, windows) -> np.ndarray:
    """The definition above, ``[N_b, S, k, k]`` float64."""
    k = cfg.kernel_size
    terms = _terms(cfg)
    out = np.zeros((len(terms), len(cfg.scales), k, k))
    for i, (sigma, m) in enumerate(zip(cfg.scales, windows)):
        grid = np.arange(m, dtype=np.float64) - m // 2
        a = (k - m) // 2
        for b, (nx, ny, j) in enumerate(terms):
            s = sigma / (cfg.mult**j if cfg.basis_type == "B" else 1.0)
            gu = eval_hermitenorm(nx, grid / s) * np.exp(-(grid**2) / (2 * s**2))
            gv = eval_hermitenorm(ny, grid / s) * np.exp(-(grid**2) / (2 * s**2))
            out[b, i, a : a + m, a : a + m] = np.outer(gu, gv) / s**2
    norms = np.sqrt((out[:, :1] ** 2).sum(axis=(2, 3), keepdims=True))
    return out / norms


def check_basis_is_analytic(layer_basis: torch.Tensor, cfg, windows) -> None:
    """``layer_basis`` ``[N_b, S, k, k]`` equals :func:`analytic_basis` at EXACT (relative to its
    largest value), scale by scale; the message names the scales that differ."""
    __tracebackhide__ = True
    ours = layer_basis.detach().double().cpu().numpy()
    ref = analytic_basis(cfg, windows)
    assert ours.shape == ref.shape, f"{cfg.key}: basis shape {ours.shape}, definition {ref.shape}"
    err = np.abs(ours - ref).max(axis=(0, 2, 3)) / np.abs(ref).max()
    bad = {i: f"{e:.2e}" for i, e in enumerate(err) if not e <= EXACT}
    assert not bad, f"{cfg.key}: basis differs from the definition at scale index: relative error {bad}"


def check_separable_is_analytic(cfg) -> None:
    """The separable path's 1-D tables (``sesn.basis.hermite.separable_factors``), multiplied
    out into 2-D functions with their normalisation, equal the analytic basis."""
    from sesn.basis.hermite import separable_factors

    factors, pairs, scale = separable_factors(cfg.spec)
    along_h = factors[:, pairs[:, 0], pairs[:, 1]]  # [S, N_b, k]
    along_w = factors[:, pairs[:, 0], pairs[:, 2]]
    rebuilt = np.einsum("b,sbk,sbl->bskl", scale, along_h, along_w)
    check_basis_is_analytic(torch.from_numpy(rebuilt), cfg, cfg.spec.windows)


# --- the optimised bases D and R ---------------------------------------------------------

NORMAL_EQUATIONS = 1e-12  # relative residual of the fit's normal equations at the basis held (float64)


def _window(basis: np.ndarray, m: int) -> np.ndarray:
    c = (basis.shape[-1] - m) // 2
    return basis[..., c : c + m, c : c + m]


def check_optimized_is_anchored(layer_basis: torch.Tensor, spec, normal: bool = True) -> None:
    """Basis "D" or "R", as a layer holds it (``[N_b, S, k, k]``), against what defines it:

    * scale 0 is its analytic span at EXACT: D, Hermite A at sigma_0 (normalised at sigma_0);
      R, Hermite B at span_sigma (sub-scales span_sigma / mult**j), each of unit L2 norm;
    * every scale whose ratio to sigma_0 is an integer d, where the basis dilates (R always, D
      with ``dilate_integer``), is scale 0 with tap t moved to d*t, zero elsewhere: exactly;
    * the other scales solve the normal equations of the fit
      (:func:`sesn.basis.optimized.normal_equations`): ``||h x - rhs|| / ||rhs||`` at most
      NORMAL_EQUATIONS (``normal=False`` skips this one: rebuilding the fit takes as long as
      the solve, tens of seconds at the paper's kernel sizes).
    """
    from types import SimpleNamespace

    from sesn.basis.optimized import normal_equations

    __tracebackhide__ = True
    ours = layer_basis.detach().double().cpu().numpy()
    k, windows, scales = spec.kernel_size, spec.windows, spec.scales
    m0 = windows[0]
    if spec.basis_type == "D":
        span = SimpleNamespace(kernel_size=m0, effective_size=spec.effective_size, scales=(scales[0],), basis_type="A")
    else:
        span = SimpleNamespace(kernel_size=m0, effective_size=spec.effective_size, scales=(spec.span,),
                               basis_type="B", mult=spec.mult, max_order=spec.max_order)  # fmt: skip
    ref0 = analytic_basis(span, (m0,))[:, 0]
    w0 = _window(ours[:, 0], m0)
    err = np.abs(w0 - ref0).max() / np.abs(ref0).max()
    assert err <= EXACT, f"basis {spec.basis_type}: scale 0 differs from its analytic span by {err:.2e} (relative)"
    outside = ours[:, 0].copy()
    _window(outside, m0)[...] = 0
    assert not outside.any(), f"basis {spec.basis_type}: scale 0 is not zero outside its {m0}-px window"
    dilates = spec.basis_type == "R" or spec.dilate_integer
    for j in range(1, len(scales)):
        r = scales[j] / scales[0]
        d = round(r)
        if not (dilates and d >= 2 and abs(r - d) < 1e-9 and d * (m0 - 1) + 1 <= windows[j]):
            continue
        want = np.zeros((ours.shape[0], k, k))
        taps = k // 2 + d * (np.arange(m0) - m0 // 2)
        want[:, taps[:, None], taps[None, :]] = w0
        assert np.array_equal(ours[:, j], want), (
            f"basis {spec.basis_type}: scale {j} (ratio {d} to sigma_0) is not scale 0 dilated by {d}"
        )
    if not normal:
        return
    eq = normal_equations(spec)
    if not eq.free:
        return
    nb = ours.shape[0]
    x = torch.cat([torch.from_numpy(_window(ours[:, j], windows[j]).reshape(nb, -1).T.copy()) for j in eq.free])
    res = float(torch.linalg.norm(eq.h @ x - eq.rhs) / torch.linalg.norm(eq.rhs))
    assert res <= NORMAL_EQUATIONS, (
        f"basis {spec.basis_type}: the free scales {eq.free} do not solve the fit's normal equations "
        f"(relative residual {res:.2e} > {NORMAL_EQUATIONS:g})"
    )
