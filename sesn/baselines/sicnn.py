"""SiCNN (Xu et al. 2014, "Scale-invariant convolutional neural networks"), as in the
SESN comparison (docs/baselines.md): a multi-column network with one shared kernel
rescaled per column, realised as one (grouped) convolution.

Kernel of column s: the weight zero-padded to K = k + 2 ceil((m - k) / 2), m = int(k *
max(scales)), resized by s (nearest for s > 1, bilinear align_corners=True for s < 1),
centred to K x K and L1-renormalised to the original filter's L1 norm. Features are laid
out ``[B, S*C, H, W]``, scale-major. Deliberate deviation: no "rescaled kernel has even
size" print.

Evaluation: a column's kernel is zero outside a centred box (small scales shrink the 7 x 7
support inside the K x K frame), so each column is convolved with its kernel cropped to that
box and the padding reduced by the same margin (or the input cropped where the margin
exceeds the padding): the same cross-correlation as the one grouped convolution with the
K x K kernels, without the multiply-adds on the zero rim. The margins are found once, at
construction, from the kernels of an all-ones weight: resizing is linear with non-negative
coefficients, so no weight has a tap where the all-ones weight has none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.common import pad_or_crop
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.large_kernel import conv2d
from sesn.nn.validation import conv_output_size


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
        self.margins = self._zero_margins()

    def column_kernels(self, weight: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The kernel of every column, ``[C_out, C_in, K, K]`` each (``weight``: the layer's own
        when None)."""
        w = self.weight if weight is None else weight
        if self.kernel_size == 1:
            return [w] * len(self.scales)
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
            out.append(ws * n1 / ws.abs().sum((2, 3), keepdim=True))
        return out

    def kernels(self) -> torch.Tensor:
        """All columns' kernels, scale-major: ``[S * C_out, C_in, K, K]``."""
        return torch.cat(self.column_kernels(), 0)

    def _zero_margins(self) -> list[int]:
        """Per column, how many outer rows and columns (each side) of its kernel are zero for
        every weight: those of the all-ones weight's kernel."""
        with torch.no_grad():
            # on the CPU whatever the default device (a model built on "meta" has no values to test)
            probe = self.column_kernels(
                torch.ones(1, 1, self.kernel_size, self.kernel_size, dtype=torch.float64, device="cpu")
            )
        return [zero_margin(k) for k in probe]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.in_channels * self.num_input_scales
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f"SiCNNConv2d: expected [B, {expected}, H, W], got {list(x.shape)}")
        c_in, ys = self.in_channels, []
        for s, (k, c) in enumerate(zip(self.column_kernels(), self.margins)):
            xs = x if self.num_input_scales == 1 else x[:, s * c_in : (s + 1) * c_in]
            if c:
                k = k[..., c:-c, c:-c]
            p = self.padding - c
            if p < 0:  # the zero rim is wider than the padding: crop the input by the rest
                xs, p = xs[..., -p:p, -p:p], 0
            ys.append(conv2d(xs, k, stride=self.stride, padding=p))
        return torch.cat(ys, 1)


def zero_margin(kernel: torch.Tensor) -> int:
    """The largest c such that the outer c rows and columns on every side of ``kernel`` (last
    two axes, square) are zero, keeping at least one centre tap."""
    support = kernel.detach().abs().flatten(0, -3).sum(0) != 0  # [K, K]
    n, c = support.shape[-1], 0
    while c < (n - 1) // 2 and not (
        support[c].any() or support[n - 1 - c].any() or support[:, c].any() or support[:, n - 1 - c].any()
    ):
        c += 1
    return c


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
