"""Models of the scale-generalization benchmark (STIR protocol, docs/scale-generalization.md).

Every method has the same design and about the same parameter budget: two conv stages
(16 then 32 channels, the method's 7 x 7 layer or its equivalent), ReLU after each, a
global max pool over space (and scales), and a linear classifier. The T -> T methods take
their layer from the catalogue (:mod:`sesn.models.method_layers`), so a method a user
registers there gets a benchmark model too (:func:`stir_model`); SESN uses STIR's settings
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

from sesn.basis.registry import basis_kind, keep_arguments
from sesn.models.method_layers import METHOD_LAYERS
from sesn.models.registry import register
from sesn.nn import SESConv_H_H, SESConv_Z2_H

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
        return f.amax(2) if f.dim() == 5 else f

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).amax((2, 3)))


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
    return StirNet(nn.Sequential(*layers), c2, num_classes)


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


# name -> (builder, the method's label in tables); built-in methods, registered below
STIR_MODELS: dict[str, str] = {}


def _register(name: str, label: str, factory, *args, **kwargs) -> None:
    STIR_MODELS[name] = label
    register(
        name,
        factory,
        *args,
        **kwargs,
        metadata=dict(
            dataset="stir",
            input_shape=(1, STIR_INPUT, STIR_INPUT),
            row=label,
            family="stir",
            note="scale-generalization benchmark model (docs/scale-generalization.md)",
        ),
    )


_register("stir_cnn", "CNN", stir_method_net, "CNN")
_register("stir_sesn_b", "SESN (Hermite B)", stir_sesn, "B")
_register("stir_sesn_a", "SESN (Hermite A)", stir_sesn, "A")
_register("stir_sesn_d", "SESN (basis D)", stir_sesn, "D")
_register("stir_sesn_r", "SESN (basis R)", stir_sesn, "R")
# DISCO in STIR: its published MNIST basis at its own scales [1, 1.26, 1.59, 2] (kernel 15,
# effective size 7, Hermite sigma_min 1.9), the file read from $SESN_DISCO_DIR or datasets/disco
# (a missing file is a DiscoBasisError naming where it looked)
_DISCO = basis_kind("DISCO").configurations["mnist"]
_register("stir_disco", "DISCO", stir_sesn, "DISCO", **{**_DISCO, "scales": list(_DISCO["scales"])})
_register("stir_si_convnet", "SI-ConvNet", stir_method_net, "SI-ConvNet")
_register("stir_sicnn", "SiCNN", stir_method_net, "SiCNN")
_register("stir_dss", "DSS", stir_method_net, "DSS")
_register("stir_sevf", "SEVF scalar", stir_method_net, "SEVF scalar")
_register("stir_ss_cnn", "SS-CNN", stir_method_net, "SS-CNN")
_register("stir_pixel_pool", "pixel pool", stir_method_net, "pixel pool")
_register("stir_slice_pool", "slice pool", stir_method_net, "slice pool")
_register("stir_pyramid", "image-pyramid ensemble", stir_pyramid)


def stir_model(name: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A benchmark model by registered name (``stir_*``, or any model registered with
    ``dataset="stir"``) or by catalogue method name (a T -> T method a user registered
    with :func:`sesn.models.method_layers.register_method_layer`)."""
    from sesn.models.registry import _REGISTRY, get_model

    info = _REGISTRY.get(name)
    if info is not None and info.dataset == "stir":
        return get_model(name, in_channels=in_channels, num_classes=num_classes)
    if name in METHOD_LAYERS:
        return stir_method_net(name, in_channels, num_classes)
    known = sorted([n for n, i in _REGISTRY.items() if i.dataset == "stir"] + list(METHOD_LAYERS))
    raise ValueError(f"unknown scale-generalization model {name!r}; known: {', '.join(known)}")


def stir_label(name: str) -> str:
    from sesn.models.registry import _REGISTRY

    info = _REGISTRY.get(name)
    return info.row if info is not None and info.row else name
