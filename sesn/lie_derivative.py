"""Infinitesimal scale equivariance: the Lie derivative of a module for the scaling generator
(Gruver, Finzi, Goldblum & Wilson, "The Lie Derivative for Measuring Learned Equivariance",
ICLR 2023), for any module: steerable layers, trained models, plain CNNs.

For the group of rescalings about the canvas centre, g_t: u -> c + e^t (u - c), acting on an
image-like feature ``[B, C, H, W]`` by ``(rho(g_t) x)(u) = x(c + e^-t (u - c))`` and on a
scale-translation feature ``[B, C, S, H, W]`` (scales sigma_i, s = log sigma) by
``(rho(g_t) y)(s, u) = y(s - t, c + e^-t (u - c))`` (the joint rescale + scale-axis shift of
:mod:`sesn.equivariance`, made continuous), the Lie derivative of ``f`` at ``x`` is

    L f(x) = d/dt [rho_out(g_t)^-1 f(rho_in(g_t) x)] at t = 0 = J_f(x) [A_in x] - A_out f(x),

with the generator ``A x = -(u - c) . grad_u x`` (and ``- d/ds`` on H features). Here:

* ``grad_u`` is the derivative at t = 0 of this package's Keys cubic interpolation (A = -0.5)
  on the grid, which is the central difference, zero outside the canvas; the antialiased
  shrink of :func:`sesn.transforms.rescale` has no derivative at t = 0 (its kernel switches),
  so the generator is that of the interpolation itself;
* ``d/ds`` on an H output is, by default (``scale_derivative="grid"``, any module), the
  second-order finite difference along the scale axis on the coordinates log sigma_i
  (one-sided at the ends). The discrete scale axis makes even a perfectly steerable layer's
  Lie derivative large by the error of that difference: a scale grid of ratio 1.4 is far too
  coarse to differentiate on. ``scale_derivative="layers"`` (modules whose steerable layers are
  this package's, ``SteerableConvBase``) differentiates the layers' own continuous scale
  family instead: every steerable layer's basis rebuilt at sigma_i e^(+-h) (times e^-+h: the
  normalisation at the smallest scale kept), a central difference in h; that measures the
  infinitesimal equivariance of the layers' own construction (their windows stay fixed);
* ``J_f(x) [v]`` is a Jacobian-vector product by forward-mode autodiff (``torch.func.jvp``;
  this package's steerable layers are evaluated on their ``naive`` path for it, which agrees
  with every other path to round-off), or, for a module with an operation forward mode does
  not support or where it is not finite (a magnitude at 0), a central difference
  ``(f(x + h v) - f(x - h v)) / 2h`` in float64 (the result names the method);
* an output without spatial axes (``[B, N]``: logits) is invariant: ``A_out = 0``.

The number reported, like Delta, is relative: ``||L f(x)||^2 / ||f(x)||^2`` on the central crop
(an eighth of the canvas dropped on each side). For a small rescale e^t of a layer whose error
grows smoothly, Delta(t) ~ t^2 x this number (docs/equivariance.md relates the two as measured).

Per-layer attribution (Gruver et al., section 5): for modules m_1..m_n of the network, the
Lie derivative of m_i at its own input, ``L m_i(h_(i-1))``, carried to the output by the rest
of the network, ``J_(>i) [L m_i]``; by the chain rule these contributions sum to ``L f(x)``
when every operation is inside some m_i (the remainder, e.g. functional calls in ``forward``,
is reported as ``"(rest)"``; so is a module whose input or output is an H feature of unknown
scales, e.g. a method's internal axis of kernel sizes, which is NaN in the attribution).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Callable, Sequence

import torch
from torch import nn

from sesn.basis import basis_tensor
from sesn.nn.steerable import SteerableConvBase

FD_STEP = 1e-4  # relative step of the finite-difference fallback (float64)


def _crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    return x[..., crop:-crop, crop:-crop] if crop > 0 and x.dim() >= 4 else x


def _default_crop(t: torch.Tensor) -> int:
    return max(1, t.shape[-1] // 8) if t.dim() >= 4 else 0


def _central_difference(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(x[u + 1] - x[u - 1]) / 2 along ``dim``, zero outside (the Keys cubic derivative on the grid)."""
    n = x.shape[dim]
    pad = [0, 0] * (x.dim() - 1 - (dim % x.dim())) + [1, 1]
    xp = torch.nn.functional.pad(x, pad)
    return (xp.narrow(dim, 2, n) - xp.narrow(dim, 0, n)) / 2


def spatial_generator(x: torch.Tensor) -> torch.Tensor:
    """``-(u - c) . grad_u x`` over the last two axes (c = (N - 1) / 2)."""
    h, w = x.shape[-2], x.shape[-1]
    shape = [1] * x.dim()
    ys = torch.arange(h, dtype=x.dtype, device=x.device) - (h - 1) / 2
    xs = torch.arange(w, dtype=x.dtype, device=x.device) - (w - 1) / 2
    shape_y, shape_x = list(shape), list(shape)
    shape_y[-2], shape_x[-1] = h, w
    return -(ys.view(shape_y) * _central_difference(x, -2) + xs.view(shape_x) * _central_difference(x, -1))


def scale_axis_derivative(y: torch.Tensor, scales: Sequence[float]) -> torch.Tensor:
    """``d y / d log sigma`` along axis 2 of ``[B, C, S, H, W]``: second-order differences on the
    log-scale coordinates (one-sided at the ends); S >= 3 (S = 2: the first-order difference)."""
    s = y.shape[2]
    if len(scales) != s:
        raise ValueError(f"an H feature with {s} scale slices, but {len(scales)} scales given: {list(scales)}")
    coords = torch.tensor([math.log(v) for v in scales], dtype=y.dtype, device=y.device)
    if s == 1:
        return torch.zeros_like(y)
    (grad,) = torch.gradient(y, spacing=(coords,), dim=2, edge_order=2 if s >= 3 else 1)
    return grad


def scale_generator(x: torch.Tensor, scales: Sequence[float] | None = None) -> torch.Tensor:
    """The scaling generator A applied to a feature: ``[B, C, H, W]`` -> the spatial part;
    ``[B, C, S, H, W]`` -> spatial part minus ``d/d log sigma`` (``scales`` needed); ``[B, N]`` -> 0."""
    if x.dim() == 4:
        return spatial_generator(x)
    if x.dim() == 5:
        if scales is None:
            raise ValueError("an H feature [B, C, S, H, W] needs its scales for the scale-axis part of the generator")
        return spatial_generator(x) - scale_axis_derivative(x, scales)
    if x.dim() == 2:
        return torch.zeros_like(x)
    raise ValueError(f"expected [B, C, H, W], [B, C, S, H, W] or [B, N], got a {x.dim()}-D tensor {list(x.shape)}")


def _jvp(f: Callable, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(f(x), J_f(x) v, method): forward mode, else a central difference in float64."""
    try:
        with torch.no_grad():  # forward mode needs no graph (and layers then skip their autograd-only checks)
            y, t = torch.func.jvp(f, (x,), (v,))
        if bool(torch.isfinite(t).all()):
            return y, t, "forward-mode AD"
        # e.g. a magnitude sqrt(.) at 0: forward mode gives NaN where the derivative is one-sided
    except (NotImplementedError, RuntimeError) as e:
        if not any(w in str(e).lower() for w in ("forward", "jvp", "dual", "functorch")):
            raise
    with torch.no_grad():
        y = f(x)
        scale = float(x.norm()) or 1.0
        h = FD_STEP * scale / max(float(v.norm()), 1e-300)
        t = (f(x + h * v) - f(x - h * v)) / (2 * h)
    return y, t, "central difference"


@dataclasses.dataclass
class LieDerivativeResult:
    """``lee``: ||L f(x)||^2 / ||f(x)||^2 on the central crop; ``per_layer``: {module name:
    ||its contribution||^2 / ||f(x)||^2} (with ``"(rest)"``: what no listed module covers);
    ``method``: how the Jacobian-vector products were taken."""

    lee: float
    numerator: float
    denominator: float
    crop: int
    method: str
    per_layer: dict = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _module_scales(module: nn.Module, fallback):
    s = getattr(module, "scales", None)
    return list(s) if s is not None else (None if fallback is None else list(fallback))


def _relative(t: torch.Tensor, ref: torch.Tensor, crop: int) -> tuple[float, float]:
    num = float(_crop(t, crop).double().pow(2).sum())
    den = float(_crop(ref, crop).double().pow(2).sum())
    return num, den


def scale_lie_derivative(
    module: Callable,
    x: torch.Tensor,
    scales: Sequence[float] | None = None,
    crop: int | None = None,
    layers: Sequence[tuple[str, nn.Module]] | bool = False,
    scale_derivative: str = "grid",
) -> LieDerivativeResult:
    """The relative Lie derivative of ``module`` at ``x`` for the scaling generator.

    Args:
        scales: the scales of H features (input or output ``[B, C, S, H, W]``); default the
            module's ``.scales``. Intermediate H features in the attribution use the producing
            module's ``.scales`` if it has one, else these.
        crop: pixels dropped on each side of a spatial output (default: an eighth).
        layers: ``True``: attribute to the modules of ``module`` (its children if it is an
            ``nn.Sequential``, else its leaf modules that map spatial features); or a list of
            ``(name, module)``; ``False``: no attribution. The attribution always uses the
            grid derivative along the scale axis.
        scale_derivative: ``"grid"`` or ``"layers"`` (see the module docstring); for an H output.

    Returns:
        :class:`LieDerivativeResult`. Measures in float64 if ``x`` is float64; the module is
        used as it is (call ``.eval()`` first for batch norm in inference mode).
    """
    if scales is None and isinstance(module, nn.Module):
        scales = _module_scales(module, None)
    if scale_derivative not in ("grid", "layers"):
        raise ValueError(f"scale_derivative must be 'grid' or 'layers', got {scale_derivative!r}")
    with _naive_paths(module):
        return _scale_lie_derivative(module, x, scales, crop, layers, scale_derivative)


@contextlib.contextmanager
def _naive_paths(module):
    """This package's steerable layers on their ``naive`` path (plain convolutions, which forward
    mode differentiates; the fast paths use custom autograd functions)."""

    convs = [m for m in module.modules() if isinstance(m, SteerableConvBase)] if isinstance(module, nn.Module) else []
    saved = [(m, m.compute_mode) for m in convs]
    try:
        for m in convs:
            m.compute_mode = "naive"
        yield
    finally:
        for m, mode in saved:
            m.compute_mode = mode


def _scale_lie_derivative(module, x, scales, crop, layers, scale_derivative) -> LieDerivativeResult:
    v_in = scale_generator(x, scales)
    y, jv, method = _jvp(module, x, v_in)
    if y.dim() == 5 and scale_derivative == "layers":
        a_out = spatial_generator(y) - continuous_scale_derivative(module, x)
        method += "; d/ds of the layers' scale family"
    else:
        a_out = scale_generator(y, scales) if y.dim() != 5 else scale_generator(y, _out_scales(module, scales, y))
    ld = jv - a_out
    crop = _default_crop(y) if crop is None else crop
    num, den = _relative(ld, y, crop)
    if den == 0:
        raise ValueError("the module's output is zero on the central crop: a relative Lie derivative is undefined")
    result = LieDerivativeResult(num / den, num, den, crop, method)
    if layers:
        targets = _targets(module) if layers is True else list(layers)
        result.per_layer, methods = _attribute(module, x, targets, scales, ld, den, crop)
        if methods - {method}:
            result.method = ", ".join(sorted(methods | {method}))
    return result


@torch.no_grad()
def continuous_scale_derivative(module: nn.Module, x: torch.Tensor, h: float = 1e-4) -> torch.Tensor:
    """``d/dh module(x)`` with every steerable layer's basis built at its scales x e^h (central
    difference; the layers run on the naive path, which reads the basis, for the measurement)."""
    import dataclasses as dc

    convs = [m for m in module.modules() if isinstance(m, SteerableConvBase)]
    if not convs:
        raise ValueError("scale_derivative='layers' needs a module with this package's steerable layers")
    saved = [(m, m.basis, m.compute_mode) for m in convs]

    def at(e):
        for m, b, _ in saved:
            spec = dc.replace(m.spec, scales=tuple(v * math.exp(e) for v in m.spec.scales))
            m.compute_mode = "naive"
            # a basis is normalised at its smallest scale; the continuous family keeps the
            # normalisation of the unperturbed one, ||psi_(sigma e^h)|| = e^-h ||psi_sigma|| (the
            # sigma^-2 law of the functions in 2-D)
            m.basis = (basis_tensor(spec, dtype=torch.float64) * math.exp(-e)).to(b.dtype).to(b.device)
        return module(x)

    try:
        out = (at(h) - at(-h)) / (2 * h)
    finally:
        for m, b, mode in saved:
            m.basis = b
            m.compute_mode = mode
    return out


def _out_scales(module, scales, y):
    s = _module_scales(module, scales) if isinstance(module, nn.Module) else scales
    if s is None or len(s) != y.shape[2]:
        raise ValueError(
            f"the output is an H feature with {y.shape[2]} scale slices; pass scales= with that many scales"
        )
    return s


def _targets(module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        return list(module.named_children())
    return [(n, m) for n, m in module.named_modules() if n and not list(m.children())]


class _Skip(Exception):
    pass


def _attribute(module, x, targets, scales, total, den, crop):
    """{name: ||J_(>i) L m_i||^2 / den} and the methods used; plus "(rest)"."""
    per, methods = {}, set()
    acc = torch.zeros_like(total)
    for name, target in targets:
        captured = {}

        def grab(mod, inputs, output, captured=captured):
            if "input" not in captured:
                captured["input"], captured["output"] = inputs[0], output

        handle = target.register_forward_hook(grab)
        try:
            with torch.no_grad():
                module(x)
        finally:
            handle.remove()
        if "input" not in captured or not isinstance(captured["input"], torch.Tensor):
            continue  # not called on a tensor in this forward
        h, out = captured["input"], captured["output"]
        if h.dim() not in (2, 4, 5) or out.dim() not in (2, 4, 5):
            continue
        h_scales = scales if h.dim() == 5 else None
        o_scales = _module_scales(target, scales) if out.dim() == 5 else None
        if (h.dim() == 5 and (h_scales is None or len(h_scales) != h.shape[2])) or (
            out.dim() == 5 and (o_scales is None or len(o_scales) != out.shape[2])
        ):
            per[name] = math.nan  # an H feature of unknown scales (e.g. a method's internal size axis): in "(rest)"
            continue
        _, jv, m1 = _jvp(target, h, scale_generator(h, h_scales))
        local = jv - scale_generator(out, o_scales)
        # carry it to the output: the network with m_i's output moved by eps * local
        eps = {"value": None, "calls": 0}

        def shift(mod, inputs, output, eps=eps, local=local):
            eps["calls"] += 1
            if eps["value"] is None or eps["calls"] > 1:  # a module called twice: its first call only
                return output
            return output + eps["value"] * local

        handle = target.register_forward_hook(shift)
        try:

            def rest(e, eps=eps):
                eps["value"], eps["calls"] = e, 0
                return module(x)

            zero = torch.zeros((), dtype=x.dtype, device=x.device)
            _, contribution, m2 = _jvp(rest, zero, torch.ones_like(zero))
        finally:
            handle.remove()
        methods |= {m1, m2}
        acc = acc + contribution
        per[name] = _relative(contribution, total, crop)[0] / den
    per["(rest)"] = _relative(total - acc, total, crop)[0] / den
    return per, methods
