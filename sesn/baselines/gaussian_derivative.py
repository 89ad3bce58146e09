"""Gaussian derivative layers (Lindeberg, JMIV 2022, "Scale-covariant and scale-invariant
Gaussian derivative networks"; Perzanowski & Lindeberg, JMIV 2025, on STIR) with scale
channels.

One layer at scale sigma is a learned linear combination of the *scale-normalised*
derivatives of its input smoothed by a Gaussian of standard deviation sigma, for every
input channel c and output channel o:

    y_o = b_o + sum_c sum_{1 <= |a| <= N} w_{o,c,a} sigma^{|a|} d^a (T(.; sigma^2) * x_c)

with a = (a_y, a_x) a derivative order of total order |a| = 1 .. N (N = ``max_order``, 2 or 3;
the zero-order term is the bias, as in Lindeberg's networks). Discretisation (Lindeberg's):
T(n; t) = e^{-t} I_n(t), the discrete analogue of the Gaussian (modified Bessel functions,
separable, truncated at 4 ceil(sigma), zero padding), and central differences for the
derivatives: d_x = (-1/2, 0, 1/2), d_xx = (1, -2, 1), d_xxx = d_x d_xx (likewise in y, mixed
ones as products).

Evaluation: for derivatives up to order 2 every stencil fits in 3 x 3 (d_x d_y included), so
the differences and the 1 x 1 mix are one 3 x 3 convolution of the smoothed input with
K_{o,c} = sum_a w_{o,c,a} sigma^{|a|} D^a (D^a the outer product of the two 1-D stencils),
zero padding 1: the same sums as differences with zero padding then the mix (a difference of
a zero-padded row is zero), without materialising the derivatives. Order 3 (d_xxx is five
taps, and its nested zero padding differs at the border) keeps the explicit differences.

Scale channels: the same layer is applied at sigma times each of ``multipliers``; the first
layer (:class:`GaussDerLift`) feeds the image to every channel, ``[B, C, H, W]`` ->
``[B, C', S, H, W]``; later layers (:class:`GaussDerConv`) apply channel i's scale to slice i.
Since the derivatives are scale-normalised, rescaling the image by a multiplier ratio maps
one scale channel onto another (up to the discretisation): the network is scale-covariant,
and a pool over the channels (:mod:`sesn.baselines.scale_channels`) makes it invariant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.dss import discrete_gaussian
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import check_scale_feature


def derivative_orders(max_order: int) -> list[tuple[int, int]]:
    """(order in y, order in x) of total order 1 .. max_order."""
    if max_order not in (1, 2, 3):
        raise ValueError(f"max_order must be 1, 2 or 3, got {max_order}")
    return [(k - a, a) for k in range(1, max_order + 1) for a in range(k + 1)]


def smoothing_matrix(gauss: torch.Tensor, n: int) -> torch.Tensor:
    """Correlation with the 1-D kernel ``gauss`` (odd length, centred, zero padding) on length n
    as an n x n matrix: ``y = M @ x``."""
    r = gauss.numel() // 2
    m = torch.zeros(n, n, dtype=torch.float64)
    for j, t in enumerate(gauss.tolist()):
        o = j - r
        if abs(o) < n:
            m += torch.diag(torch.full((n - abs(o),), float(t), dtype=torch.float64), o)
    return m


def _shift_diff(f: torch.Tensor, dim: int, second: bool) -> torch.Tensor:
    pad = (1, 1) if dim == -1 else (0, 0, 1, 1)
    fp = F.pad(f, pad)
    ahead = fp[..., 2:] if dim == -1 else fp[..., 2:, :]
    behind = fp[..., :-2] if dim == -1 else fp[..., :-2, :]
    return ahead - 2 * f + behind if second else (ahead - behind) / 2


def difference(f: torch.Tensor, order: int, dim: int) -> torch.Tensor:
    """The central difference of ``order`` 0-3 along ``dim`` (-1: x, -2: y), zero padding:
    d_x = (-1/2, 0, 1/2), d_xx = (1, -2, 1), d_xxx = d_x d_xx."""
    if order == 0:
        return f
    if order == 1:
        return _shift_diff(f, dim, False)
    if order == 2:
        return _shift_diff(f, dim, True)
    return _shift_diff(_shift_diff(f, dim, True), dim, False)


class _GaussDer(ScaleEquivariantModule, abstract=True):
    def __init__(self, in_channels, out_channels, sigma, multipliers, max_order=2, bias=True):
        super().__init__()
        if sigma <= 0 or not multipliers or any(m <= 0 for m in multipliers):
            raise ValueError(f"{type(self).__name__}: sigma and multipliers must be > 0, got {sigma}, {multipliers}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.sigma, self.multipliers, self.max_order = float(sigma), [float(m) for m in multipliers], max_order
        self.orders = derivative_orders(max_order)
        self.scales = [self.sigma * m for m in self.multipliers]  # sigma of each scale channel, in px
        # each channel's 1-D discrete Gaussian, kept on the CPU (not a buffer): the smoothing
        # matrices are built from its values, which a model moved to "meta" would not have
        self.gaussians = [discrete_gaussian(s * s).float() for s in self.scales]
        if max_order <= 2:  # D^a of each order as a 3 x 3 correlation stencil (see the module docstring)
            taps = {0: [0.0, 1.0, 0.0], 1: [-0.5, 0.0, 0.5], 2: [1.0, -2.0, 1.0]}
            stencils = torch.stack(
                [torch.outer(torch.tensor(taps[ay]), torch.tensor(taps[ax])) for ay, ax in self.orders]
            )
            self.register_buffer("stencils", stencils, persistent=False)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, len(self.orders)))
        nn.init.kaiming_normal_(self.weight.view(out_channels, -1), nonlinearity="relu")
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def _smoothing(self, i: int, n: int, x: torch.Tensor) -> torch.Tensor:
        key = (i, n, x.dtype, x.device)  # built once per channel, length, dtype and device
        cache = self.__dict__.setdefault("_smoothing_cache", {})
        if key not in cache:
            cache[key] = smoothing_matrix(self.gaussians[i], n).to(x.dtype).to(x.device)
        return cache[key]

    def channel(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Scale channel i of the layer on ``x`` [B, C, H, W] -> [B, C_out, H, W]: the separable
        smoothing as two matrix products, then the central differences and the 1 x 1 mix (one
        3 x 3 convolution up to order 2)."""
        b, c, h, w = x.shape
        smooth = self._smoothing(i, h, x) @ x @ self._smoothing(i, w, x).T
        s = self.scales[i]
        if self.max_order <= 2:
            norm = torch.tensor([s ** (ay + ax) for ay, ax in self.orders], dtype=x.dtype, device=x.device)
            kernel = torch.einsum("oca,a,akl->ockl", self.weight, norm, self.stencils.to(x.dtype))
            return F.conv2d(smooth, kernel, self.bias, padding=1)
        along_x = [difference(smooth, k, -1) for k in range(self.max_order + 1)]  # order k in x
        derivs = torch.stack([difference(along_x[ax], ay, -2) * s ** (ay + ax) for ay, ax in self.orders], 2)
        y = (self.weight.view(self.out_channels, -1) @ derivs.view(b, c * len(self.orders), h * w)).view(b, -1, h, w)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    @property
    def scale_ratio(self) -> float:
        return max(self.multipliers) / min(self.multipliers)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, sigma={self.sigma:g}, "
            f"multipliers={[round(m, 3) for m in self.multipliers]}, max_order={self.max_order}"
        )


class GaussDerLift(_GaussDer):
    """T -> H: ``[B, C_in, H, W]`` -> ``[B, C_out, S, H, W]``, slice i the layer at
    ``sigma * multipliers[i]``."""

    input_kind, output_kind = "T", "H"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"GaussDerLift: expected [B, {self.in_channels}, H, W], got {list(x.shape)}")
        return torch.stack([self.channel(x, i) for i in range(len(self.scales))], 2)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        return (b, self.out_channels, len(self.scales), h, w)


class GaussDerConv(_GaussDer):
    """H -> H: slice i of ``[B, C_in, S, H, W]`` through the layer at ``sigma * multipliers[i]``."""

    input_kind, output_kind = "H", "H"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "GaussDerConv", self.in_channels, len(self.scales))
        slices = x.transpose(1, 2).contiguous()  # [B, S, C, H, W]: each scale channel contiguous
        return torch.stack([self.channel(slices[:, i], i) for i in range(len(self.scales))], 2)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, s, h, w = input_shape
        return (b, self.out_channels, s, h, w)


def geometric(ratio: float, low: int, high: int) -> list[float]:
    """``ratio ** k`` for k = low .. high."""
    return [ratio**k for k in range(low, high + 1)]


GDN_MULTIPLIERS = geometric(math.sqrt(2), -2, 4)  # 0.5 .. 4, a factor sqrt(2) apart
