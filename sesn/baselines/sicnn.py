"""SiCNN (Xu et al. 2014, "Scale-invariant convolutional neural networks"), as in the
SESN comparison (docs/baselines.md): a multi-column network with one shared kernel
rescaled per column, realised as one (grouped) convolution.

Kernel of column s: the weight zero-padded to K = k + 2 ceil((m - k) / 2), m = int(k *
max(scales)), resized by s (nearest for s > 1, bilinear align_corners=True for s < 1),
centred to K x K and L1-renormalised to the original filter's L1 norm. Features are laid
out ``[B, S*C, H, W]``, scale-major. Deliberate deviation: no "rescaled kernel has even
size" print.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.common import pad_or_crop
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.checks import conv_output_size
from sesn.nn.large_kernel import conv2d


class SiCNNConv2d(ScaleEquivariantModule):
    """Args: in_channels, out_channels (per column), kernel_size k, scales, stride,
    pad_if_needed (size-preserving padding m // 2), num_input_scales (1: the input feeds
    every column; S: column s reads its own channel block). No bias."""

    # T -> T: the S columns are channel blocks of a [B, S * C, H, W] image feature
    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        k = (
            self.kernel_size
            if self.kernel_size == 1
            else self.kernel_size + 2 * math.ceil((self.m - self.kernel_size) / 2)
        )
        f = lambda n: conv_output_size(n, k, self.stride, self.padding, "SiCNNConv2d")  # noqa: E731
        return (b, self.out_channels * len(self.scales), f(h), f(w))

    def __init__(
        self, in_channels, out_channels, kernel_size, scales, stride=1, pad_if_needed=True, num_input_scales=1
    ):
        super().__init__()
        if num_input_scales not in (1, len(scales)):
            raise ValueError(f"num_input_scales must be 1 or {len(scales)}, got {num_input_scales}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.scales = list(scales)
        self.stride = stride
        self.num_input_scales = num_input_scales
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.m = int(kernel_size * max(self.scales))
        self.padding = self.m // 2 if (pad_if_needed and kernel_size > 1) else 0

    def kernels(self) -> torch.Tensor:
        w = self.weight
        s_count = len(self.scales)
        if self.kernel_size == 1:
            return w.repeat(s_count, 1, 1, 1)
        p = math.ceil((self.m - self.kernel_size) / 2)
        big = self.kernel_size + 2 * p
        w_pad = F.pad(w, (p, p, p, p))
        n1 = w.abs().sum((2, 3), keepdim=True)
        out = []
        for s in self.scales:
            if s > 1:
                ws = F.interpolate(w_pad, scale_factor=s, mode="nearest")
            elif s < 1:
                ws = F.interpolate(w_pad, scale_factor=s, mode="bilinear", align_corners=True)
            else:
                ws = w_pad
            ws = pad_or_crop(ws, big)
            ws = ws * n1 / ws.abs().sum((2, 3), keepdim=True)
            out.append(ws)
        return torch.cat(out, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.in_channels * self.num_input_scales
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f"SiCNNConv2d: expected [B, {expected}, H, W], got {list(x.shape)}")
        return conv2d(x, self.kernels(), stride=self.stride, padding=self.padding, groups=self.num_input_scales)


class ColumnMax(ScaleEquivariantModule):
    """Max over the S columns of a scale-major ``[B, S*C, ...]`` feature."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        return (input_shape[0], input_shape[1] // self.num_scales, *input_shape[2:])

    def __init__(self, num_scales: int):
        super().__init__()
        self.num_scales = num_scales

    def forward(self, x):
        b, sc = x.shape[:2]
        return x.view(b, self.num_scales, sc // self.num_scales, *x.shape[2:]).max(1).values
