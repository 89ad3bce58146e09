"""conv3d (STIR, Altstidl et al. 2023): a first layer that lifts the image to a stack of
responses of one kernel resized to several sizes (the pixel pool's kernels, without the
pool), then a 3-D convolution over (size, y, x), then the global max over everything.

STIR's version resizes the first kernel to every odd size up to the input side (29 sizes for
7 x 7 on 64 px) and convolves the stack with 7 x 7 x 7 kernels without padding. Ours uses the
pixel pool's 6 sizes (``sesn.models.method_layers.PIXEL_POOL_SIZES``), so the 3-D kernel is
3 taps along the size axis (padding 1: the 6 sizes stay 6), 7 x 7 in space ("same" padding).
"""

from __future__ import annotations

import torch
from torch import nn

from sesn.baselines.pixel_pool import PixelPoolConv2d
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import check_scale_feature


class RescaledKernelLift(PixelPoolConv2d):
    """T -> H: ``[B, C_in, H, W]`` -> ``[B, C_out, M, H, W]``, slice m the response of the
    kernel resized to ``sizes[m]`` (times k^2 / m^2) plus the bias. Arguments as
    :class:`~sesn.baselines.pixel_pool.PixelPoolConv2d` (``pool`` is not used)."""

    input_kind, output_kind = "T", "H"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.responses(x).permute(1, 2, 0, 3, 4)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1, 1)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        return (b, self.out_channels, len(self.sizes), h, w)


class ScaleConv3d(ScaleEquivariantModule):
    """H -> H: a 3-D convolution over (scale, y, x) with zero padding ``taps // 2`` along
    scale and ``k // 2`` in space. Shape ``[B, C_in, S, H, W]`` -> ``[B, C_out, S, H, W]``."""

    input_kind, output_kind = "H", "H"

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 7, scale_taps: int = 3, bias=True):
        super().__init__()
        if kernel_size % 2 == 0 or scale_taps % 2 == 0:
            raise ValueError(f"ScaleConv3d: kernel_size and scale_taps must be odd, got {kernel_size}, {scale_taps}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.conv = nn.Conv3d(
            in_channels,
            out_channels,
            (scale_taps, kernel_size, kernel_size),
            padding=(scale_taps // 2, kernel_size // 2, kernel_size // 2),
            bias=bias,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "ScaleConv3d", self.in_channels, None)
        return self.conv(x)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, s, h, w = input_shape
        return (b, self.out_channels, s, h, w)
