"""Pixel pool (STIR's strongest single model, docs/scale-generalization.md): one shared
k x k kernel per channel pair, resized to several odd sizes, each response computed with
"same" padding, then a max over the sizes at every pixel. STIR's two other pooling rules over
the same responses are options (``pool``): *slice* pooling keeps, per sample and output
channel, the whole response (slice) that holds the largest activation; *energy* pooling the
slice with the largest sum.

The kernel resized to size m is multiplied by k^2 / m^2 so that responses at different
sizes stay comparable (the kernel's sum is roughly kept). STIR resizes to every odd size
from k up to the input side (29 sizes for k = 7 on 64 px inputs) and pads each response
back to the smallest kernel's output size; here every size is convolved with padding m // 2
so all responses have the input's size, and ``sizes`` is an argument (a few sizes keep CPU
training affordable; the profile that uses fewer says so).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.large_kernel import conv2d, uses_fft


class PixelPoolConv2d(ScaleEquivariantModule):
    """``y = pool_m conv2d(x, resize(w, m) * k^2 / m^2, padding=m // 2) + b``.

    Args: in_channels, out_channels, kernel_size k (odd), sizes (odd, >= k; default k only),
    mode: interpolation of the kernel ("bilinear", "bicubic", "nearest", "area"), bias,
    pool: "pixel" (max over the sizes at every pixel), "slice" (per sample and channel, the
    response of the size whose response holds the largest value) or "energy" (the size whose
    response has the largest sum). Shape: ``[B, C_in, H, W]`` -> ``[B, C_out, H, W]``.
    """

    input_kind, output_kind = "T", "T"

    POOLS = ("pixel", "slice", "energy")

    def __init__(self, in_channels, out_channels, kernel_size=7, sizes=None, mode="bilinear", bias=True, pool="pixel"):
        super().__init__()
        if pool not in self.POOLS:
            raise ValueError(f"PixelPoolConv2d: pool must be one of {self.POOLS}, got {pool!r}")
        self.pool = pool
        sizes = [kernel_size] if sizes is None else sorted(int(m) for m in sizes)
        if kernel_size % 2 == 0 or any(m % 2 == 0 or m < kernel_size for m in sizes):
            raise ValueError(
                "PixelPoolConv2d: kernel_size and sizes must be odd with sizes >= kernel_size, "
                f"got {kernel_size}, {sizes}"
            )
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.sizes, self.mode = sizes, mode
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def kernels(self) -> list[torch.Tensor]:
        k = self.kernel_size
        out = []
        for m in self.sizes:
            if m == k:
                out.append(self.weight)
                continue
            align = False if self.mode in ("bilinear", "bicubic") else None
            w = F.interpolate(self.weight, size=(m, m), mode=self.mode, align_corners=align)
            out.append(w * (k * k) / (m * m))
        return out

    def responses(self, x: torch.Tensor) -> torch.Tensor:
        """The response of every kernel size, ``[M, B, C_out, H, W]`` (no bias)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"{type(self).__name__}: expected [B, {self.in_channels}, H, W], got {list(x.shape)}")
        ks = self.kernels()
        ys: list = [None] * len(ks)
        spectral = [i for i, k in enumerate(ks) if uses_fft(k.shape[-1])]
        for i, w in enumerate(ks):  # the small sizes directly, each with its own kernel
            if i not in spectral:
                ys[i] = F.conv2d(x, w, padding=w.shape[-1] // 2)
        if spectral:  # the large ones centred in the largest one's support: one spectral convolution
            big = max(ks[i].shape[-1] for i in spectral)
            w = torch.cat([F.pad(ks[i], ((big - ks[i].shape[-1]) // 2,) * 4) for i in spectral], 0)
            large = conv2d(x, w, padding=big // 2).unflatten(1, (len(spectral), self.out_channels)).unbind(1)
            for i, y in zip(spectral, large):
                ys[i] = y
        ys = torch.stack(ys, 0)  # [M, B, C, H, W]
        return ys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = self.responses(x)
        if self.pool == "pixel":
            y = ys.amax(0)
        else:  # one whole slice per (sample, channel): the one with the largest value / sum
            score = ys.flatten(3).amax(3) if self.pool == "slice" else ys.flatten(3).sum(3)  # [M, B, C]
            pick = score.argmax(0)  # [B, C]
            y = ys.gather(0, pick[None, :, :, None, None].expand(1, *ys.shape[1:]))[0]
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        return (b, self.out_channels, h, w)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"sizes={self.sizes}, mode={self.mode!r}, pool={self.pool!r}"
        )
