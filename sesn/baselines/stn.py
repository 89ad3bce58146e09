"""Spatial transformer (Jaderberg et al., NeurIPS 2015), as STIR uses it: a small
localisation network predicts an affine map from the image, the image is resampled through
it (bilinear), and the rest of the network sees the resampled image. Nothing in it is
scale-equivariant by construction: whatever it does about size, it learns from the training
sizes.

Localisation network (ours, after STIR's): 3 x 3 conv (16), 2 x 2 max pool, ReLU, 3 x 3 conv
(16), 2 x 2 max pool, ReLU, then an adaptive average pool to 4 x 4 (STIR flattens the 16 x 16
map of its 64 px input; the adaptive pool lets the layer take any input size, which the
equivariance measurements need), a 32-unit linear layer, ReLU, and a linear layer to the 6
affine parameters, initialised to zero weights and the identity map as bias.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class SpatialTransformer(ScaleEquivariantModule):
    """T -> T: ``[B, C, H, W]`` -> the same image resampled through a predicted affine map
    (``affine_grid``/``grid_sample``, bilinear, zeros outside, ``align_corners=False``)."""

    input_kind, output_kind = "T", "T"

    def __init__(self, in_channels: int = 1, hidden: int = 16, units: int = 32):
        super().__init__()
        self.in_channels = in_channels
        self.localisation = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.MaxPool2d(2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(hidden * 16, units),
            nn.ReLU(),
            nn.Linear(units, 6),
        )
        nn.init.zeros_(self.localisation[-1].weight)
        with torch.no_grad():
            self.localisation[-1].bias.copy_(torch.tensor(IDENTITY))

    def theta(self, x: torch.Tensor) -> torch.Tensor:
        """The predicted affine maps, ``[B, 2, 3]`` (normalised coordinates, output -> input)."""
        return self.localisation(x).view(-1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"SpatialTransformer: expected [B, {self.in_channels}, H, W], got {list(x.shape)}")
        grid = F.affine_grid(self.theta(x), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        return tuple(input_shape)
