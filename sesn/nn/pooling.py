"""Scale-wise spatial pooling: the same 2-D pooling at every scale."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.validation import check_scale_feature


class ScaleMaxPool2d(ScaleEquivariantModule):
    """Max-pool each scale slice spatially (``MaxPool3d`` with window 1 on the scale axis).

    Shape: ``[B, C, S, H, W]`` -> ``[B, C, S, H', W']``. Exactly equivariant to scale-axis
    shifts; to translations by multiples of ``stride``.
    """

    input_kind, output_kind = "H", "H"

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "ScaleMaxPool2d", None, None)
        return F.max_pool3d(
            x, (1, self.kernel_size, self.kernel_size), (1, self.stride, self.stride), (0, self.padding, self.padding)
        )

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, c, s, h, w = input_shape
        f = lambda n: (n + 2 * self.padding - self.kernel_size) // self.stride + 1  # noqa: E731
        return (b, c, s, f(h), f(w))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ScaleAvgPool2d(ScaleMaxPool2d):
    """Average-pool each scale slice spatially (zeros counted at padded borders)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "ScaleAvgPool2d", None, None)
        return F.avg_pool3d(
            x, (1, self.kernel_size, self.kernel_size), (1, self.stride, self.stride), (0, self.padding, self.padding)
        )
