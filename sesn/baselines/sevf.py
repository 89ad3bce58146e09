"""SEVF (Marcos et al. 2018, "Scale equivariant CNNs with scale steerable filters" /
scale-equivariant vector fields), as in the SESN comparison (docs/baselines.md).

Each layer convolves the input resized to 8 scales s_l = 1.26^l (l = -4..3; bilinear,
align_corners=False, to round(N s_l), NumPy round-half-even), resizes every response back,
takes max and argmax over scales and outputs a 2-D vector field: magnitude ReLU(max),
angle theta_{argmax} = l (2 pi / 3) / 7. Deliberate deviations (all [fix ok] in the spec):
``dilation`` and the unused ``VectorDropout`` are not reproduced; the output size is
computed for stride 1 only (the layers refuse stride > 1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule

N_SMALL, N_BIG, BASE, ANGLE_RANGE = 5, 3, 1.26, 2 * math.pi / 3
LOG_SCALES = np.linspace(-N_SMALL + 1, N_BIG, N_SMALL + N_BIG)
SCALES = [BASE**l for l in LOG_SCALES]
ANGLES = [l * ANGLE_RANGE / (N_SMALL + N_BIG - 1) for l in LOG_SCALES]


def conv_scale(x: torch.Tensor, w: torch.Tensor, s: float, padding: int) -> torch.Tensor:
    n = x.shape[-1]
    k = w.shape[-1]
    n_out = n + 1 + 2 * padding - k
    size = int(np.round(n * s))
    xs = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = F.conv2d(xs, w, padding=padding)
    return F.interpolate(y, size=(n_out, n_out), mode="bilinear", align_corners=False)


def _polar(responses: torch.Tensor):
    v, idx = responses.max(0)
    angles = torch.tensor(ANGLES, dtype=v.dtype, device=v.device)[idx]
    mag = F.relu(v)
    return mag * torch.cos(angles), mag * torch.sin(angles)


def _check(x, channels, name):
    if x.dim() != 4 or x.shape[1] != channels or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{name}: expected a square [B, {channels}, N, N] input, got {list(x.shape)}")


class ScaleConvScalar(ScaleEquivariantModule):
    """Scalar field -> vector field ``(u, v)``; weight ``[C_out, C_in, k, k]``."""

    # T -> T: SEVF's vector field (u, v) is a pair of image features; shapes are u's
    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        k = self.weight.shape[-1]
        return (b, self.weight.shape[0], h + 2 * self.padding - k + 1, w + 2 * self.padding - k + 1)

    @property
    def scale_ratio(self) -> float:
        """The largest over the smallest of its filter scales."""
        return max(SCALES) / min(SCALES)

    def __init__(self, in_channels, out_channels, kernel_size=7, padding=3, stride=1):
        super().__init__()
        if stride != 1:
            raise ValueError("SEVF layers support stride 1 only")
        self.in_channels, self.padding = in_channels, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        _check(x, self.in_channels, "ScaleConvScalar")
        return _polar(torch.stack([conv_scale(x, self.weight, s, self.padding) for s in SCALES]))


class ScaleConvVector(ScaleEquivariantModule):
    """Vector field ``(u, v)`` -> vector field; weights ``w_u``, ``w_v`` steered by theta_l."""

    # T -> T: SEVF's vector field (u, v) is a pair of image features; shapes are u's
    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        k = self.weight_u.shape[-1]
        return (b, self.weight_u.shape[0], h + 2 * self.padding - k + 1, w + 2 * self.padding - k + 1)

    def __init__(self, in_channels, out_channels, kernel_size=7, padding=3, stride=1):
        super().__init__()
        if stride != 1:
            raise ValueError("SEVF layers support stride 1 only")
        self.in_channels, self.padding = in_channels, padding
        self.weight_u = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.weight_v = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight_u, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.weight_v, a=math.sqrt(5))

    def forward(self, uv):
        u, v = uv
        _check(u, self.in_channels, "ScaleConvVector")
        responses = []
        for s, th in zip(SCALES, ANGLES):
            wu = self.weight_u * math.cos(th) + self.weight_v * math.sin(th)
            wv = -self.weight_u * math.sin(th) + self.weight_v * math.cos(th)
            responses.append(conv_scale(u, wu, s, self.padding) + conv_scale(v, wv, s, self.padding))
        return _polar(torch.stack(responses))


class Magnitude(ScaleEquivariantModule):
    """|(u, v)|: the magnitude of a vector field, T -> T."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        return tuple(input_shape)

    def forward(self, uv):
        u, v = uv
        return torch.sqrt(u**2 + v**2)


class VectorMaxPool(ScaleEquivariantModule):
    """Max-pool the magnitude; take u and v at the winning positions."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, h, w = input_shape
        f = lambda n: (n + 2 * self.padding - self.kernel_size) // self.stride + 1  # noqa: E731
        return (b, c, f(h), f(w))

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride or kernel_size, padding

    def forward(self, uv):
        u, v = uv
        _, idx = F.max_pool2d(torch.sqrt(u**2 + v**2), self.kernel_size, self.stride, self.padding, return_indices=True)
        flat = idx.flatten(2)
        pick = lambda t: t.flatten(2).gather(2, flat).view_as(idx)  # noqa: E731
        return pick(u), pick(v)


class VectorBatchNorm(ScaleEquivariantModule):
    """Divide u and v by the std of the magnitude per channel (no centring, no affine).
    ``weight`` is a trainable parameter the reference never uses (kept for the count)."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        return tuple(input_shape)

    def __init__(self, num_features, eps=1e-5, momentum=0.5):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.register_buffer("running_var", torch.ones(1, num_features, 1, 1))

    def forward(self, uv):
        u, v = uv
        if self.training:
            mag = torch.sqrt(u**2 + v**2)
            var = mag.transpose(0, 1).flatten(1).var(1, unbiased=False).view(1, -1, 1, 1)
            n = mag.numel() / mag.shape[1]
            with torch.no_grad():
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / (n - 1))
        else:
            var = self.running_var
        scale = torch.rsqrt(var + self.eps)
        return u * scale, v * scale
