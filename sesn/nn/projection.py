"""Projections H -> T: reductions over the scale axis (invariant to scale-axis shifts
when nothing is shifted out)."""

from __future__ import annotations

import torch

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.functional import scale_max
from sesn.nn.validation import check_scale_feature


class SESMaxProjection(ScaleEquivariantModule):
    """``y = max_i x[:, :, i]``. Shape: ``[B, C, S, H, W]`` -> ``[B, C, H, W]``."""

    input_kind, output_kind = "H", "T"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "SESMaxProjection", None, None)
        # values and gradients of x.max(dim=2).values, without its slow index kernel; the
        # backward reads a saved index, not the output, so an in-place ReLU after it is safe
        return scale_max(x)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, _, h, w = input_shape
        return (b, c, h, w)


class SESMeanProjection(ScaleEquivariantModule):
    """``y = mean_i x[:, :, i]``. Shape: ``[B, C, S, H, W]`` -> ``[B, C, H, W]``."""

    input_kind, output_kind = "H", "T"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "SESMeanProjection", None, None)
        return x.mean(dim=2)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, _, h, w = input_shape
        return (b, c, h, w)
