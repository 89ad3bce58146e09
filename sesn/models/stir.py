"""Models of the scale-generalization benchmark (STIR protocol, docs/scale-generalization.md).

Every method has the same design and about the same parameter budget: two conv stages
(16 then 32 channels, the method's 7 x 7 layer or its equivalent), ReLU after each, a
global max pool over space (and scales), and a linear classifier. The T -> T methods take
their layer from the catalogue (:mod:`sesn.models.method_layers`), so a method a user
registers there gets a benchmark model too (:func:`sesn.models.method.stir_model`); SESN uses STIR's settings
(scales 2.0-4.0, kernel 15, effective size 7, Hermite basis B, bias) with bases B, A and D.
The image-pyramid ensemble applies one CNN to a 3-level Gaussian pyramid and averages the
logits.

Differences from STIR's code, kept on purpose: every layer uses "same" padding (STIR's
CNN uses none; the global max pool makes the difference small) so that features align
with the image and the size-equivariance measure can compare them on the object's box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.foveated import FoveatedScaleChannels
from sesn.baselines.scale_channels import ScaleChannelPool
from sesn.basis.registry import keep_arguments
from sesn.models.method_layers import METHOD_LAYERS
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.nn.functional import scale_max

STIR_CHANNELS = (16, 32)
STIR_SESN = dict(kernel_size=15, effective_size=7, scales=[2.0, 2.52, 3.17, 4.0], mult=1.5, max_order=4)
STIR_INPUT = 64


class StirNet(nn.Module):
    """``body`` (two stages with ReLU), global max over everything but (batch, channel),
    linear head. ``features(x)``: the image-aligned feature map the pool reads, ``[B, C, H, W]``
    (scale-translation features are max-projected over scales)."""

    def __init__(self, body: nn.Module, channels: int, num_classes: int):
        super().__init__()
        self.body = body
        self.head = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.body(x)
        return scale_max(f) if f.dim() == 5 else f  # amax over a middle axis is slow on CPU

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(2).amax(-1))  # over one contiguous axis: fast


def stir_method_net(method: str, in_channels: int = 1, num_classes: int = 10, channels=STIR_CHANNELS) -> StirNet:
    """A catalogue T -> T method (``METHOD_LAYERS[method]``) in the STIR design."""
    try:
        entry = METHOD_LAYERS[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; catalogue methods: {', '.join(METHOD_LAYERS)}") from None
    c1, c2 = channels
    layers = [entry.build(in_channels, c1, True), nn.ReLU(), entry.build(c1, c2, False), nn.ReLU()]
    if entry.tail is not None:
        layers.append(entry.tail())
    body = nn.Sequential(*layers)
    return StirNet(entry.wrap(body) if entry.wrap else body, c2, num_classes)


class ScaleChannelNet(nn.Module):
    """A scale-channel network's read-out, in the papers' order: the body's scale channels
    ``[B, C, S, H, W]``, the global max over space per channel, then the pool over the channels
    (max or avg, with scale-channel dropout in training: :class:`ScaleChannelPool`), then the
    linear head. The body is either a stack of scale-channel layers (Gaussian derivative
    network) or a :class:`FoveatedScaleChannels` (whose ``channels`` are read here).
    ``features(x)``: the image-aligned map for the size-equivariance measure (the channels
    pooled per pixel the same way; foveated channels taken back to the input frame)."""

    def __init__(self, body: nn.Module, channels: int, num_classes: int, pool):
        super().__init__()
        self.body, self.pool = body, pool
        self.head = nn.Linear(channels, num_classes)

    def _channels(self, x):
        return self.body.channels(x) if isinstance(self.body, FoveatedScaleChannels) else self.body(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.body, FoveatedScaleChannels):
            return self.body(x)
        f = self.body(x)
        return f.amax(2) if self.pool.mode == "max" else f.mean(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self._channels(x).amax((3, 4))))


# scale-channel dropout of the Gaussian derivative networks (Perzanowski & Lindeberg 2025)
GDN_DROPOUT = 0.2


# a Gaussian derivative layer has 5 weights per channel pair (derivatives of order 1-2) where a
# 7 x 7 kernel has 49: widened x2 (less than the CNN's parameter budget; the CPU cost of the
# 7 scale channels grows with the width: docs/scale-generalization.md)
GDN_CHANNELS = (32, 64)


def stir_gdn(pool: str, in_channels: int = 1, num_classes: int = 10, channels=GDN_CHANNELS) -> ScaleChannelNet:
    """Gaussian derivative network in the STIR design: the catalogue's layers (scale-normalised
    Gaussian derivatives up to order 2, sigma 1 then 2 px, in 7 scale channels x0.5 .. x4),
    32 then 64 channels, batch normalisation and ReLU after each, global max over space, max or
    average over the channels with scale-channel dropout 0.2 in training."""
    layer = METHOD_LAYERS["Gaussian derivative"]
    c1, c2 = channels
    # batch normalisation after each layer as in Lindeberg's networks: one mean and variance
    # per feature channel over batch, scale channels and space (the same for every scale
    # channel, so the covariance is kept)
    body = nn.Sequential(
        layer.build(in_channels, c1, True),
        nn.BatchNorm3d(c1),
        nn.ReLU(),
        layer.build(c1, c2, False),
        nn.BatchNorm3d(c2),
        nn.ReLU(),
    )
    return ScaleChannelNet(body, c2, num_classes, ScaleChannelPool(pool, GDN_DROPOUT))


def stir_fov(pool: str, in_channels: int = 1, num_classes: int = 10, channels=STIR_CHANNELS) -> ScaleChannelNet:
    """FovMax / FovAvg in the STIR design: the catalogue's entry (the CNN's two 7 x 7 stages
    shared by 8 foveated channels: the image rescaled x0.25 .. x2.83, 64 px fovea), global max
    over space per channel, max or average over the channels."""
    layer = METHOD_LAYERS[{"max": "FovMax", "avg": "FovAvg"}[pool]]
    c1, c2 = channels
    inner = nn.Sequential(layer.build(in_channels, c1, True), nn.ReLU(), layer.build(c1, c2, False), nn.ReLU())
    return ScaleChannelNet(layer.wrap(inner), c2, num_classes, ScaleChannelPool(pool))


def stir_sesn(
    basis: str = "B", in_channels: int = 1, num_classes: int = 10, channels=STIR_CHANNELS, **overrides
) -> StirNet:
    """SESN in the STIR design: T -> H, ReLU, H -> H (scale_size 1), ReLU; STIR's settings."""
    kw = keep_arguments(basis, {**STIR_SESN, **overrides})  # e.g. no mult/max_order for A and D
    pad = kw["kernel_size"] // 2
    c1, c2 = channels
    body = nn.Sequential(
        SESConv_Z2_H(in_channels, c1, padding=pad, bias=True, basis_type=basis, **kw),
        nn.ReLU(),
        SESConv_H_H(c1, c2, 1, padding=pad, bias=True, basis_type=basis, **kw),
        nn.ReLU(),
    )
    return StirNet(body, c2, num_classes)


def gaussian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """The input and ``levels - 1`` successive half-size levels, each blurred with the 5-tap
    binomial kernel [1, 4, 6, 4, 1] / 16 (reflect padding) before halving (bilinear)."""
    g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=x.dtype, device=x.device) / 16
    c = x.shape[1]
    out = [x]
    for _ in range(levels - 1):
        y = F.pad(out[-1], (2, 2, 2, 2), mode="reflect")
        y = F.conv2d(y, g.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
        y = F.conv2d(y, g.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
        out.append(F.interpolate(y, scale_factor=0.5, mode="bilinear", align_corners=False))
    return out


class PyramidEnsemble(nn.Module):
    """One network applied to each level of a Gaussian image pyramid; logits averaged.
    ``features`` are the full-resolution level's."""

    def __init__(self, net: StirNet, levels: int = 3):
        super().__init__()
        self.net, self.levels = net, levels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.net(level) for level in gaussian_pyramid(x, self.levels)]).mean(0)


def stir_pyramid(
    in_channels: int = 1, num_classes: int = 10, channels=STIR_CHANNELS, levels: int = 3
) -> PyramidEnsemble:
    return PyramidEnsemble(stir_method_net("CNN", in_channels, num_classes, channels), levels)


def stir_sesn_pyramid(
    basis: str = "B", in_channels: int = 1, num_classes: int = 10, channels=STIR_CHANNELS, levels: int = 3
) -> PyramidEnsemble:
    """This project's SESN (STIR's settings) in the image-pyramid ensemble's design: one SESN
    applied to each level of the same 3-level Gaussian pyramid, logits averaged. The levels
    extend SESN's scale range (x2) by the pyramid's factor 4; the comparison with the
    pyramid ensemble isolates the layer (SESN instead of the CNN)."""
    return PyramidEnsemble(stir_sesn(basis, in_channels, num_classes, channels), levels)
