"""1x1 convolution on scale-translation features: the same kernel at every scale."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import check_conv_arguments, check_scale_feature


class SESConv_H_H_1x1(ScaleEquivariantModule):
    r"""``y[:, o, i] = sum_c w[o, c] x[:, c, i] + b[o]`` at every scale i.

    Treats all scales alike, so it is exactly equivariant to shifts along the scale
    axis and to integer translations (by multiples of ``stride``).

    Unlike the reference layer, the bias **is applied** when ``bias=True`` (the
    reference creates it but never adds it); a reference checkpoint with a non-zero
    bias therefore gives different outputs here.

    Args:
        in_channels, out_channels: channel counts.
        stride: spatial stride.
        num_scales: accepted for signature compatibility; any S is accepted.
        bias: add one bias per output channel.

    Shape:
        ``[B, C_in, S, H, W]`` -> ``[B, C_out, S, H', W']``; ``weight`` ``[C_out, C_in, 1, 1]``.
    """

    input_kind, output_kind = "H", "H"

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, num_scales: int = 1, bias: bool = True):
        super().__init__()
        check_conv_arguments("SESConv_H_H_1x1", in_channels, out_channels, stride, 0)
        if not isinstance(num_scales, int) or num_scales < 1:
            raise ValueError(f"SESConv_H_H_1x1: num_scales must be a positive int, got {num_scales!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.num_scales = num_scales
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        if len(input_shape) != 5:
            raise ValueError(f"SESConv_H_H_1x1: expected input shape [B, C, S, H, W], got {list(input_shape)}")
        b, _, s, h, w = input_shape
        return (b, self.out_channels, s, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "SESConv_H_H_1x1", self.in_channels, None)
        return F.conv3d(x, self.weight.unsqueeze(2), self.bias, stride=(1, self.stride, self.stride))

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, bias={self.bias is not None}"
