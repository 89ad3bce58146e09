"""Batch norm for scale-translation features: statistics per channel shared over scales."""

from __future__ import annotations

import torch
from torch import nn

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import check_scale_feature


class ScaleBatchNorm(ScaleEquivariantModule, nn.BatchNorm3d):
    """``BatchNorm3d`` over ``[B, C, S, H, W]``: one mean/var/affine per channel, shared by
    all scales. In eval mode it is a per-channel affine map, hence exactly equivariant to
    scale-axis shifts and translations. Same state_dict keys as ``nn.BatchNorm3d``."""

    input_kind, output_kind = "H", "H"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "ScaleBatchNorm", self.num_features, None)
        return super().forward(x)
