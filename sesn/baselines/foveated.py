"""Foveated scale-channel networks (Jansson & Lindeberg, JMIV 2022, "Scale-invariant
scale-channel networks: deep networks that generalise to previously unseen scales"):
FovMax and FovAvg.

One network with shared weights (``inner``) is applied to the image rescaled by each factor
s_i; every channel sees a *fovea* of the same size (F x F, by default the input's size), the
centre of the rescaled image: a zoom-out channel (s < 1) sees the whole image, zero-padded to
the fovea; a zoom-in channel (s > 1) the central F / s part of it, enlarged. The channels'
final features are max-pooled over space and then pooled over the channels: max (FovMax) or
average (FovAvg), before the classifier (:mod:`sesn.baselines.scale_channels`).

Rescaling: bilinear, antialiased when shrinking, to ``round(s * H)`` x ``round(s * W)``. The
fovea is centred (the crop of the enlarged image starts at ``(N - F) // 2``; the shrunk image
is placed at ``(F - N) // 2``). On STIR, where objects sit anywhere in the image, a zoom-in
channel sees only objects near the centre: a property of the method on this data, kept.

For the layer-level measurements (equivariance reports), :meth:`FoveatedScaleChannels.forward`
returns an image-aligned map instead: each channel's output map taken back to the input frame
(the inverse resize of the region its fovea covered; zero where it saw nothing), then the max
(or the mean over the channels that cover the pixel) over channels. Models use
:meth:`FoveatedScaleChannels.channels`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule

FOV_FACTORS = [2 ** (k / 2) for k in range(-4, 4)]  # 0.25 .. 2.83, a factor sqrt(2) apart


def resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    if (h, w) == tuple(x.shape[-2:]):
        return x
    shrink = h < x.shape[-2] or w < x.shape[-1]
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=shrink)


def centre(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The centred h x w window of ``x`` (cropped, or ``x`` zero-padded around): the window
    starts at ``(n - h) // 2`` when cropping and ``x`` is placed at ``(h - n) // 2`` when
    padding, so padding undoes cropping exactly."""
    n, m = x.shape[-2:]
    out = x
    if n >= h:
        out = out[..., (n - h) // 2 : (n - h) // 2 + h, :]
    else:
        top = (h - n) // 2
        out = F.pad(out, (0, 0, top, h - n - top))
    if m >= w:
        out = out[..., (m - w) // 2 : (m - w) // 2 + w]
    else:
        left = (w - m) // 2
        out = F.pad(out, (left, w - m - left))
    return out


class FoveatedScaleChannels(ScaleEquivariantModule):
    """Args: ``inner`` (the shared network, image-to-map ``[B, C, F, F] -> [B, C', F, F]``),
    ``factors`` (the channels' rescaling factors), ``pool`` ("max" or "avg", the image-aligned
    read-out of :meth:`forward`), ``fovea`` (side of every channel's input; None: the input's)."""

    input_kind, output_kind = "T", "T"

    def __init__(self, inner: nn.Module, factors=FOV_FACTORS, pool: str = "max", fovea: int | None = None):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"FoveatedScaleChannels: pool must be 'max' or 'avg', got {pool!r}")
        if not factors or any(s <= 0 for s in factors):
            raise ValueError(f"FoveatedScaleChannels: factors must be > 0, got {factors}")
        self.inner, self.factors, self.pool, self.fovea = inner, [float(s) for s in factors], pool, fovea

    @property
    def scale_ratio(self) -> float:
        return max(self.factors) / min(self.factors)

    def _fovea(self, x):
        return (x.shape[-2], x.shape[-1]) if self.fovea is None else (self.fovea, self.fovea)

    def channels(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, C, H, W]`` -> ``[B, C', S, F', F']``: every channel's output on its fovea."""
        if x.dim() != 4:
            raise ValueError(f"FoveatedScaleChannels: expected [B, C, H, W], got {list(x.shape)}")
        fh, fw = self._fovea(x)
        h, w = x.shape[-2:]
        views = [centre(resize(x, max(1, round(s * h)), max(1, round(s * w))), fh, fw) for s in self.factors]
        y = self.inner(torch.cat(views, 0))  # one pass over all channels
        return y.unflatten(0, (len(self.factors), x.shape[0])).permute(1, 2, 0, 3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.channels(x)
        h, w = x.shape[-2:]
        maps, cover = [], []
        for i, s in enumerate(self.factors):
            n, m = max(1, round(s * h)), max(1, round(s * w))
            back = resize(centre(y[:, :, i], n, m), h, w)  # the rescaled image's frame, then the input's
            seen = resize(centre(torch.ones_like(y[:1, :1, i]), n, m), h, w) > 0.5
            maps.append(back * seen)
            cover.append(seen)
        maps, cover = torch.stack(maps, 2), torch.stack(cover, 2)
        if self.pool == "max":
            return maps.masked_fill(~cover, float("-inf")).amax(2).nan_to_num(neginf=0.0)
        return maps.sum(2) / cover.sum(2).clamp(min=1)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        # the inner network is arbitrary: its channel count is read from one forward of a
        # single zero image (the spatial size is the input's by construction)
        b, _, h, w = input_shape
        p = next(self.inner.parameters(), None)
        like = dict(dtype=p.dtype, device=p.device) if p is not None else {}
        with torch.no_grad():
            out = self.channels(torch.zeros(1, *input_shape[1:], **like))
        return (b, out.shape[1], h, w)

    def extra_repr(self) -> str:
        return f"factors={[round(s, 3) for s in self.factors]}, pool={self.pool!r}, fovea={self.fovea}"
