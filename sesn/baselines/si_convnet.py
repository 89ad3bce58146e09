"""SI-ConvNet (Kanazawa, Sinha & Lewis 2014, "Locally scale-invariant convolutional neural
networks"), as in the SESN comparison (docs/baselines.md).

The input is rescaled to every scale s (bilinear, align_corners=True), centred back to
N x N (pad or crop), convolved with one shared kernel, rescaled by 1/s, centred to the
output size, and the responses are max-pooled over scales in every layer. As in the
reference, the zero border added when s > 1 takes part in the max. Each rescale-and-centre is
two products with its interpolation matrix (:func:`sesn.baselines.common.rescale_to`, equal
to the interpolate-then-pad/crop form to round-off).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.common import rescale_to
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import conv_output_size


class SIConv2d(ScaleEquivariantModule, nn.Conv2d):
    """``nn.Conv2d`` (same weight, bias and init) applied over an input pyramid with a max
    over scales. Shape: ``[B, C_in, N, N]`` -> ``[B, C_out, N', N']`` (square inputs)."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        f = lambda n, i: conv_output_size(n, self.kernel_size[i], self.stride[i], self.padding[i], "SIConv2d")  # noqa: E731
        return (b, self.out_channels, f(h, 0), f(w, 1))

    def __init__(self, in_channels, out_channels, kernel_size, scales=(1.0,), stride=1, padding=0, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.scales = list(scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-1] != x.shape[-2]:
            raise ValueError(f"SIConv2d: expected a square image batch [B, C, N, N], got {list(x.shape)}")
        b, n = x.shape[0], x.shape[-1]
        stack = torch.cat([rescale_to(x, s, n) for s in self.scales], 0)
        y = F.conv2d(stack, self.weight, self.bias, self.stride, self.padding)
        n_out = y.shape[-1]
        ys = [rescale_to(part, 1.0 / s, n_out) for part, s in zip(y.split(b, 0), self.scales)]
        return torch.stack(ys, 0).max(0).values

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scales={self.scales}"
