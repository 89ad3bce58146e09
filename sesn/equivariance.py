"""How equivariant is this? One implementation, used by tests, reports and benchmarks.

Every function here *returns numbers* (floats or :class:`EquivarianceResult`); nothing
prints or asserts (see :mod:`sesn.testing` for the asserting helper).

The paper's error measure (docs/equivariance.md): ``Delta = ||L Phi(f) - Phi(L f)||^2 / ||L Phi(f)||^2``,
summed over the batch, channels and the compared scale slices, on the central region
of the canvas (``crop`` pixels dropped on every side), and only on the scale slices that
remain valid after the shift. ``L`` is :func:`sesn.transforms.rescale` (Keys cubic,
A = -0.5, antialiased when shrinking, about the centre on a fixed canvas).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import torch
from torch import nn

from sesn.lie_derivative import LieDerivativeResult, scale_lie_derivative  # noqa: F401  (the infinitesimal measure)
from sesn.transforms import rescale, rescale_and_scale_shift, rescale_corner, scale_shift, translate

PROTOCOL = (
    "Delta = ||L Phi(f) - Phi(L f)||^2 / ||L Phi(f)||^2 on the central crop; "
    "L = rescale about the centre on the same canvas (Keys cubic A=-0.5, antialiased "
    "when shrinking) by a_i = sigma_i / sigma_{i+t} plus a shift by t on the scale axis"
)
PROTOCOL_CORNER = PROTOCOL.replace(
    "L = rescale about the centre on the same canvas (Keys cubic A=-0.5, antialiased when shrinking)",
    "L = F.interpolate(scale_factor=a, bicubic, antialias=True, align_corners=False) anchored at the top-left "
    "corner, onto a zero canvas of the same size",
)


@dataclasses.dataclass
class EquivarianceResult:
    """Delta of one layer on one input for one scale step.

    Attributes:
        delta: overall relative squared error (sum of numerators / sum of denominators).
        per_pair: ``{(i, i + t): Delta}`` for every compared pair of scale indices.
        step: the scale step t.
        factors: ``{(i, i + t): a_i}`` rescale factors used.
    """

    delta: float
    per_pair: dict
    step: int
    factors: dict
    numerator: float
    denominator: float
    crop: int
    protocol: str = PROTOCOL

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def default_crop(size: int) -> int:
    """Pixels dropped on each side before comparing: an eighth of the canvas."""
    return max(1, size // 8)


def _crop(x: torch.Tensor, crop: int) -> torch.Tensor:
    if crop <= 0:
        return x
    return x[..., crop:-crop, crop:-crop]


def _sq(x: torch.Tensor) -> float:
    return float(x.double().pow(2).sum())


def relative_error(reference: torch.Tensor, other: torch.Tensor, crop: int = 0) -> float:
    """``||reference - other||^2 / ||reference||^2`` on the central crop."""
    ref, oth = _crop(reference, crop), _crop(other, crop)
    if ref.shape != oth.shape:
        raise ValueError(f"cannot compare shapes {list(ref.shape)} and {list(oth.shape)}")
    den = _sq(ref)
    if den == 0:
        return 0.0 if _sq(oth) == 0 else math.inf
    return _sq(ref - oth) / den


def _layer_scales(layer: nn.Module, scales):
    if scales is not None:
        return list(scales)
    s = getattr(layer, "scales", None)
    if s is None:
        raise ValueError("pass scales= for a layer without a .scales attribute")
    return list(s)


@torch.no_grad()
def scale_equivariance(
    layer: Callable,
    x: torch.Tensor,
    step: int = 1,
    scales: Sequence[float] | None = None,
    crop: int | None = None,
    rescale_fn: Callable | None = None,
) -> EquivarianceResult:
    """Delta of a steerable layer (T->H or H->H) for the joint rescale + scale shift.

    For a T->H layer (4-D input) and every i < S - t:
    ``Phi(L_{a_i} f)[:, :, i]`` vs ``L_{a_i} Phi(f)[:, :, i + t]``, a_i = sigma_i / sigma_{i+t}.
    For an H->H layer (5-D input): ``Phi(T x)`` vs ``T Phi(x)`` with
    T = :func:`sesn.transforms.rescale_and_scale_shift`, compared on slices i < S - t.
    A layer with stride > 1 is not supported (the rescale does not commute with it).
    ``rescale_fn`` is the rescale L: :func:`sesn.transforms.rescale` (None, the default: this
    project's protocol) or :func:`sesn.transforms.rescale_corner` (an independent one).
    """
    if rescale_fn is None or rescale_fn is rescale:
        rescale_fn, protocol = rescale, PROTOCOL
    elif rescale_fn is rescale_corner:
        protocol = PROTOCOL_CORNER
    else:
        protocol = f"{PROTOCOL} (L replaced by {getattr(rescale_fn, '__name__', rescale_fn)})"
    scales = _layer_scales(layer, scales)
    s = len(scales)
    if not 1 <= step < s:
        raise ValueError(f"scale step must be in [1, {s - 1}] for {s} scales, got {step}")
    crop = default_crop(x.shape[-1]) if crop is None else crop
    per_pair, factors = {}, {}
    num_total = den_total = 0.0
    if x.dim() == 5 and x.shape[2] != s:
        raise ValueError(f"an H input with {x.shape[2]} scale slices, but {s} scales: {scales}")
    if x.dim() == 4:
        # reference: the joint action on the lifted output (slice i = L_{a_i} of slice i+t)
        ref_all = rescale_and_scale_shift(_checked_output(layer(x), x, s), scales, step, rescale_fn)
        for i in range(s - step):
            a = scales[i] / scales[i + step]
            ref = ref_all[:, :, i]
            out = _checked_output(layer(rescale_fn(x, a)), x, s)[:, :, i]
            num, den = _sq(_crop(ref - out, crop)), _sq(_crop(ref, crop))
            per_pair[(i, i + step)] = num / den if den else math.nan
            factors[(i, i + step)] = a
            num_total += num
            den_total += den
    elif x.dim() == 5:
        ref_all = rescale_and_scale_shift(_checked_output(layer(x), x, s), scales, step, rescale_fn)
        out_all = _checked_output(layer(rescale_and_scale_shift(x, scales, step, rescale_fn)), x, s)
        for i in range(s - step):
            ref, out = ref_all[:, :, i], out_all[:, :, i]
            num, den = _sq(_crop(ref - out, crop)), _sq(_crop(ref, crop))
            per_pair[(i, i + step)] = num / den if den else math.nan
            factors[(i, i + step)] = scales[i] / scales[i + step]
            num_total += num
            den_total += den
    else:
        raise ValueError(f"expected a 4-D image or 5-D scale feature, got shape {list(x.shape)}")
    if den_total == 0:
        raise ValueError(
            "the layer's output is zero on the compared slices and central crop: Delta (a relative error) is undefined"
        )
    delta = num_total / den_total
    return EquivarianceResult(delta, per_pair, step, factors, num_total, den_total, crop, protocol)


def _checked_output(y, x: torch.Tensor, num_scales: int) -> torch.Tensor:
    """A T->H / H->H layer's output on ``x``: ``[B, C_out, S, H, W]`` with x's batch and canvas and
    the layer's S scales (the joint action is defined on the same canvas); else a ValueError."""
    want = f"[{x.shape[0]}, C_out, {num_scales}, {x.shape[-2]}, {x.shape[-1]}]"
    if not isinstance(y, torch.Tensor) or y.dim() != 5:
        got = list(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"expected output {want} (batch, channels, scales, height, width), got {got}")
    if y.shape[0] != x.shape[0] or y.shape[2] != num_scales or tuple(y.shape[-2:]) != tuple(x.shape[-2:]):
        raise ValueError(f"expected output {want} (batch, channels, scales, height, width), got {list(y.shape)}")
    return y


@torch.no_grad()
def rescale_equivariance(layer: Callable, x: torch.Tensor, factor: float, crop: int | None = None) -> float:
    """Delta of a T->T map (e.g. a plain ``nn.Conv2d``): ``Phi(L_a f)`` vs ``L_a Phi(f)``."""
    crop = default_crop(x.shape[-1]) if crop is None else crop
    return relative_error(rescale(layer(x), factor), layer(rescale(x, factor)), crop)


@torch.no_grad()
def plain_conv_baseline(
    layer_or_scales,
    x: torch.Tensor,
    step: int = 1,
    conv: nn.Module | None = None,
    crop: int | None = None,
    generator: torch.Generator | None = None,
) -> EquivarianceResult:
    """The same measurement as :func:`scale_equivariance` for a plain ``nn.Conv2d`` of the
    same kernel size (k x k, default init): a conv has one scale, so each pair (i, i+t)
    compares ``conv(L_{a_i} f)`` with ``L_{a_i} conv(f)``. For a 5-D input the conv is
    applied to every scale slice."""
    if isinstance(layer_or_scales, nn.Module):
        scales = list(layer_or_scales.scales)
        k = layer_or_scales.kernel_size
        cin, cout = layer_or_scales.in_channels, layer_or_scales.out_channels
    else:
        raise TypeError("pass the steerable layer whose plain counterpart should be measured")
    if conv is None:
        conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        if generator is not None:
            bound = 1.0 / math.sqrt(cin * k * k)
            with torch.no_grad():
                conv.weight.copy_(
                    torch.rand(conv.weight.shape, generator=generator, dtype=torch.float64) * 2 * bound - bound
                )
        conv = conv.to(x.dtype)
    crop = default_crop(x.shape[-1]) if crop is None else crop
    per_pair, factors = {}, {}
    num_total = den_total = 0.0
    for i in range(len(scales) - step):
        a = scales[i] / scales[i + step]
        if x.dim() == 4:
            xi = x
        else:
            xi = x[:, :, i + step]
        ref = rescale(conv(xi), a)
        out = conv(rescale(xi, a))
        num, den = _sq(_crop(ref - out, crop)), _sq(_crop(ref, crop))
        per_pair[(i, i + step)] = num / den if den else math.nan
        factors[(i, i + step)] = a
        num_total += num
        den_total += den
    delta = num_total / den_total if den_total else math.nan
    return EquivarianceResult(delta, per_pair, step, factors, num_total, den_total, crop)


@torch.no_grad()
def translation_equivariance(
    layer: Callable, x: torch.Tensor, shift=(3, -2), crop: int | None = None, stride: int = 1, radius: int | None = None
) -> float:
    """Relative error of ``Phi(T_v x)`` vs ``T_{v/stride} Phi(x)`` for an integer shift v
    (a multiple of ``stride``), compared away from the borders.

    Zero padding makes outputs within the receptive-field ``radius`` of the border (plus
    the shift) see different data, so the default ``crop`` is
    ``ceil((|v| + radius) / stride) + 1`` output pixels; ``radius`` defaults to
    ``layer.kernel_size // 2`` (0 for layers without a kernel). Pass it for deep models.
    """
    dy, dx = shift
    if dy % stride or dx % stride:
        raise ValueError(f"shift {shift} must be a multiple of the stride {stride}")
    ref = translate(layer(x), dy // stride, dx // stride)
    out = layer(translate(x, dy, dx))
    if crop is None:
        if radius is None:
            k = getattr(layer, "kernel_size", 1)
            radius = (k if isinstance(k, int) else max(k)) // 2
        crop = -(-(max(abs(dy), abs(dx)) + radius) // stride) + 1
    return relative_error(ref, out, crop)


@torch.no_grad()
def scale_shift_equivariance(layer: Callable, x: torch.Tensor, t: int = 1) -> float:
    """Relative error of ``Phi(shift_t x)`` vs ``shift_t Phi(x)`` on the slices that stay
    valid (a pure shift along the scale axis; exact for scale-pointwise layers only)."""
    s = x.shape[2]
    ref = scale_shift(layer(x), t)
    out = layer(scale_shift(x, t))
    valid = slice(0, s - t) if t >= 0 else slice(-t, s)
    return relative_error(ref[:, :, valid], out[:, :, valid])


@torch.no_grad()
def scale_shift_invariance(projection: Callable, x: torch.Tensor, t: int = 1) -> float:
    """Relative error of ``P(x')`` vs ``P(x)`` where x' is x with its scale axis shifted by t
    *cyclically* (nothing is lost, so a reduction over scales must not change)."""
    return relative_error(projection(x), projection(torch.roll(x, t, dims=2)))


@torch.no_grad()
def invariance_error(model: Callable, x: torch.Tensor, factor: float) -> float:
    """``||M(L_a f) - M(f)||^2 / ||M(f)||^2`` for a model with vector (logit) output."""
    return relative_error(model(x), model(rescale(x, factor)))


def delta_vs_step(layer, x, scales=None, crop=None) -> dict[int, EquivarianceResult]:
    """:func:`scale_equivariance` for every step 1..S-1."""
    scales = _layer_scales(layer, scales)
    return {t: scale_equivariance(layer, x, t, scales, crop) for t in range(1, len(scales))}
