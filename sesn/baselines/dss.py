"""DSS (Worrall & Welling 2019, "Deep scale-spaces"), as in the SESN comparison
(docs/baselines.md): a fixed Gaussian scale-space lifting (discrete Gaussian of Lindeberg,
``e^{-t} I_|x|(t)``) and dilated convolutions over (scale, space).

Deliberate deviations: the lifting is a depthwise separable convolution with 1-D kernels
(the reference stores dense C x C kernels: same result, O(C^2) memory); reference
checkpoints' ``kernelx_j``/``kernely_j`` buffers are accepted and checked against ours;
nothing is printed at construction.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from scipy import special
from torch import nn

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.functional import scale_max


def discrete_gaussian(t: float) -> torch.Tensor:
    """Lindeberg's discrete Gaussian of variance t on -w..w, w = 4 ceil(sqrt(t)), sum 1."""
    w = 4 * math.ceil(math.sqrt(t))
    x = torch.arange(-w, w + 1, dtype=torch.float64).abs()
    g = torch.from_numpy(special.ive(x.numpy(), t))
    return g / g.sum()


class BesselConv2d(ScaleEquivariantModule):
    """Lift ``[B, C, H, W]`` to ``[B, C, n, H, W]``: slice 0 the input, slice j the input
    blurred by variance ``t_j = z^2 (base^{2j} - 1)`` (total blur z base^j)."""

    input_kind, output_kind = "T", "H"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, h, w = input_shape
        return (b, c, self.n_scales, h, w)

    def __init__(self, n_channels: int, base: float = 2.0, zero_scale: float = 0.25, n_scales: int = 2):
        super().__init__()
        self.n_channels, self.base, self.zero_scale, self.n_scales = n_channels, base, zero_scale, n_scales
        for j in range(1, n_scales):
            t = zero_scale**2 * (base ** (2 * j) - 1)
            self.register_buffer(f"kernel_{j}", discrete_gaussian(t).float(), persistent=False)

    @property
    def scale_ratio(self) -> float:
        """The largest over the smallest scale of its scale space (base^(n_scales - 1))."""
        return float(self.base) ** (self.n_scales - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.n_channels:
            raise ValueError(f"BesselConv2d: expected [B, {self.n_channels}, H, W], got {list(x.shape)}")
        c = self.n_channels
        outs = [x]
        for j in range(1, self.n_scales):
            g = getattr(self, f"kernel_{j}").to(x.dtype)
            w = g.numel() // 2
            y = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, w), groups=c)
            y = F.conv2d(y, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(w, 0), groups=c)
            outs.append(y)
        return torch.stack(outs, 2)

    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
        for j in range(1, self.n_scales):  # the reference's dense kernels: accept and check
            for axis in "xy":
                key = f"{prefix}kernel{axis}_{j}"
                if key in state_dict:
                    dense = state_dict.pop(key).double()
                    profile = dense.reshape(dense.shape[0], dense.shape[1], -1)[0, 0]
                    ours = getattr(self, f"kernel_{j}").double()
                    if profile.numel() != ours.numel() or not torch.allclose(profile, ours, atol=1e-6):
                        error_msgs.append(f"{key}: checkpoint scale-space kernel differs from this layer's")
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )


class Dconv2d(ScaleEquivariantModule):
    """Scale-space convolution: output scale s sums input scales s..min(s+K_s, S_out)-1
    with a k x k kernel dilated by ``int(base**s)`` ("same" dilated padding). As in the
    reference, ``padding`` is ignored and input scales beyond S_out are dropped.

    Shape: ``[B, C_in, S_in, H, W]`` -> ``[B, C_out, S_out, H', W']``."""

    input_kind, output_kind = "H", "H"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, _, h, w = input_shape
        return (b, self.out_channels, self.out_scales, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size=(1, 3, 3),
        base=2.0,
        io_scales=(2, 2),
        stride=1,
        padding=None,
        bias=False,
        init="he",
    ):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.scale_size, self.k = kernel_size[0], kernel_size[-1]
        self.base, self.stride = base, stride
        self.out_scales, self.in_scales = io_scales
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.init = init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """'he': N(0, 2 / (k^2 K_s C_in)), bias 1. 'delta': U(+-0.01) plus a block-diagonal
        identity at the kernel centre of every scale tap (g = gcd(C_in, C_out))."""
        c_out, c_in = self.out_channels, self.in_channels
        if self.init == "he":
            nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (self.k**2 * self.scale_size * c_in)))
        elif self.init == "delta":
            with torch.no_grad():
                self.weight.uniform_(-0.01, 0.01)
                g = math.gcd(c_in, c_out)
                a = torch.arange(c_in).view(1, -1) * g // c_in
                b = torch.arange(c_out).view(-1, 1) * g // c_out
                mask = (a == b).to(self.weight.dtype)  # [C_out, C_in]
                centre = self.weight[:, :, :, self.k // 2, self.k // 2]
                centre.copy_(torch.where(mask.bool().unsqueeze(-1), torch.full_like(centre, g / c_out), centre))
        else:
            raise ValueError(f"unknown init {self.init!r}; use 'he' or 'delta'")
        if self.bias is not None:
            nn.init.ones_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(f"Dconv2d: expected [B, {self.in_channels}, S, H, W], got {list(x.shape)}")
        if x.shape[2] < self.out_scales:
            raise ValueError(f"Dconv2d: needs at least {self.out_scales} input scales, got {x.shape[2]}")
        b = x.shape[0]
        outs = []
        for s in range(self.out_scales):
            t = min(s + self.scale_size, self.out_scales)
            xs = x[:, :, s:t].reshape(b, self.in_channels * (t - s), *x.shape[-2:])
            w = self.weight[:, :, : t - s].reshape(self.out_channels, self.in_channels * (t - s), self.k, self.k)
            d = int(self.base**s)
            y = F.conv2d(xs, w, self.bias, stride=self.stride, padding=d * (self.k // 2), dilation=d)
            outs.append(y)
        return torch.stack(outs, 2)


class ScaleMaxProjection(ScaleEquivariantModule):
    """Max over the scale axis, H -> T."""

    input_kind, output_kind = "H", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, _, h, w = input_shape
        return (b, c, h, w)

    def forward(self, x):
        return scale_max(x)
