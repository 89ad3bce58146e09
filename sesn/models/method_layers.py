"""One catalogue of per-method layers: what the equivariance reports, the methods report
and the tests build when they measure "one layer" or "a stack of L layers" of a method.

Two kinds of entries:

* :func:`ses_stack`: SESN, a T -> H layer followed by ``[ReLU, H -> H (scale_size 1)]``
  x (L - 1), for a model configuration's scales and a basis (A, B, D, DISCO, ...). Measured
  with the joint rescale + scale shift.
* :data:`METHOD_LAYERS`: the T -> T methods (the CNN and the paper's baselines), each as
  it is used in its MNIST model (7 x 7 kernels, or 11 for SS-CNN), with a ReLU between
  stacked layers. Measured with the plain rescale. :func:`register_method_layer` adds a
  user's own method (see docs/models.md); names must be unique.

``stack(depth=1)`` is the single layer the equivariance report measures, so the two
reports cannot disagree on what a method's layer is.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from torch import nn

from sesn.baselines.conv3d import RescaledKernelLift, ScaleConv3d
from sesn.baselines.dss import BesselConv2d, Dconv2d, ScaleMaxProjection
from sesn.baselines.foveated import FOV_FACTORS, FoveatedScaleChannels
from sesn.baselines.gaussian_derivative import GDN_MULTIPLIERS, GaussDerConv, GaussDerLift
from sesn.baselines.pixel_pool import PixelPoolConv2d
from sesn.baselines.sevf import Magnitude, ScaleConvScalar
from sesn.baselines.si_convnet import SIConv2d
from sesn.baselines.sicnn import ColumnMax, SiCNNConv2d
from sesn.baselines.ss_cnn import ScaleConvSteering
from sesn.baselines.stn import SpatialTransformer
from sesn.models.mnist_configs import layer_kwargs
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.nn.base import ScaleEquivariantModule

# the image pyramid of SI-ConvNet and SiCNN in the MNIST models (docs/baselines.md)
PYRAMID = [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33]
# pixel pool (STIR's rescaled-kernel model): kernel sizes, about x1.33 apart, spanning x4
# (STIR itself uses every odd size up to the input side: docs/scale-generalization.md)
PIXEL_POOL_SIZES = (7, 9, 13, 17, 23, 29)


@dataclasses.dataclass(frozen=True)
class MethodLayer:
    """A T -> T method. ``build(in_channels, out_channels, first)`` returns one layer
    (``first``: the layer that reads the image); ``tail()`` an optional module after the last
    layer (SiCNN's max over columns); ``description`` says what one layer is."""

    name: str
    build: Callable[[int, int, bool], nn.Module]
    description: str
    tail: Callable[[], nn.Module] | None = None
    # a method that acts on the whole stack rather than layer by layer (foveated scale
    # channels: one shared network run on rescaled copies of the image): wrap(stack) -> T -> T
    wrap: Callable[[nn.Module], nn.Module] | None = None

    def stack(self, depth: int, channels: int, in_channels: int = 1) -> nn.Sequential:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        layers: list[nn.Module] = []
        for i in range(depth):
            if i:
                layers.append(nn.ReLU())
            layers.append(self.build(in_channels if i == 0 else channels, channels, i == 0))
        if self.tail is not None:
            layers.append(self.tail())
        return nn.Sequential(self.wrap(nn.Sequential(*layers))) if self.wrap else nn.Sequential(*layers)

    def layer(self, channels: int, in_channels: int = 1) -> nn.Sequential:
        return self.stack(1, channels, in_channels)


METHOD_LAYERS: dict[str, MethodLayer] = {}


def register_method_layer(
    name: str, build: Callable[[int, int, bool], nn.Module], description: str, tail=None, wrap=None
) -> MethodLayer:
    """Add a T -> T method to every report that measures methods layer by layer."""
    if name in METHOD_LAYERS:
        raise ValueError(f"method layer {name!r} is already registered")
    entry = MethodLayer(name, build, description, tail, wrap)
    METHOD_LAYERS[name] = entry
    return entry


def ses_stack(
    depth: int, channels: int, cfg, basis: str, in_channels: int = 1, nonlinearity: bool = True
) -> nn.Sequential:
    """SESN: T -> H, then [ReLU, H -> H scale_size 1] x (depth - 1) (no ReLU with
    ``nonlinearity=False``); ``cfg`` has the kernel size, effective size, scales (and mult,
    max_order for bases B and R, span_sigma for R) of a model."""
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    kw = layer_kwargs(cfg, basis)
    layers: list[nn.Module] = [SESConv_Z2_H(in_channels, channels, **kw)]
    for _ in range(depth - 1):
        layers += [nn.ReLU()] if nonlinearity else []
        layers += [SESConv_H_H(channels, channels, 1, **kw)]
    stack = nn.Sequential(*layers)
    stack.scales = list(cfg.scales)  # what sesn.equivariance.scale_equivariance reads
    return stack


def _cnn(c_in, c_out, first):
    return nn.Conv2d(c_in, c_out, 7, padding=3)


def _si_convnet(c_in, c_out, first):

    return SIConv2d(c_in, c_out, 7, PYRAMID, padding=3)


def _sicnn(c_in, c_out, first):

    return SiCNNConv2d(c_in, c_out, 7, PYRAMID, num_input_scales=1 if first else len(PYRAMID))


def _sicnn_tail():

    return ColumnMax(len(PYRAMID))


def _dss(c_in, c_out, first):

    return nn.Sequential(
        BesselConv2d(c_in, 2.0, 0.25, 2), Dconv2d(c_in, c_out, (1, 7, 7), 2.0, (2, 2)), ScaleMaxProjection()
    )


def _sevf_scalar(c_in, c_out, first):

    return nn.Sequential(ScaleConvScalar(c_in, c_out, 7, 3), Magnitude())


def _ss_cnn(c_in, c_out, first):

    return ScaleConvSteering(c_in, c_out, 11, [5, 7, 9, 11, 13], relu=False)


def _pixel_pool(c_in, c_out, first):

    return PixelPoolConv2d(c_in, c_out, 7, PIXEL_POOL_SIZES)


def _slice_pool(c_in, c_out, first):

    return PixelPoolConv2d(c_in, c_out, 7, PIXEL_POOL_SIZES, pool="slice")


register_method_layer("CNN", _cnn, "7x7 conv")
register_method_layer("SI-ConvNet", _si_convnet, "7x7 conv over a 7-level image pyramid, max over levels")
register_method_layer(
    "SiCNN", _sicnn, "7x7 conv rescaled to 7 columns, max over columns after the last layer", _sicnn_tail
)
register_method_layer("DSS", _dss, "Gaussian scale-space lift, dilated 7x7 scale conv, max over scales")
register_method_layer("SEVF scalar", _sevf_scalar, "7x7 scalar-to-vector scale conv, magnitude")
register_method_layer("SS-CNN", _ss_cnn, "log-radial steerable 11x11 filters at 5 sizes, max over sizes")
register_method_layer(
    "pixel pool",
    _pixel_pool,
    f"7x7 kernel resized to {PIXEL_POOL_SIZES[0]}..{PIXEL_POOL_SIZES[-1]} px ({len(PIXEL_POOL_SIZES)} sizes), "
    "max per pixel",
)


register_method_layer(
    "slice pool",
    _slice_pool,
    f"the pixel pool's {len(PIXEL_POOL_SIZES)} resized 7x7 kernels; per sample and channel the whole response "
    "of the size holding the largest value",
)


def _conv3d(c_in, c_out, first):

    return RescaledKernelLift(c_in, c_out, 7, PIXEL_POOL_SIZES) if first else ScaleConv3d(c_in, c_out, 7, 3)


def _scale_max():

    return ScaleMaxProjection()


def _stn(c_in, c_out, first):

    conv = nn.Conv2d(c_in, c_out, 7, padding=3)
    return nn.Sequential(SpatialTransformer(c_in), conv) if first else conv


# Gaussian derivative layers: sigma 1 px for the layer that reads the image, 2 px after it
# (the STIR design has two), times the scale channels' multipliers 0.5 .. 4
GDN_SIGMAS = (1.0, 2.0)


def _gdn(c_in, c_out, first):

    if first:
        return GaussDerLift(c_in, c_out, GDN_SIGMAS[0], GDN_MULTIPLIERS, max_order=2)
    return GaussDerConv(c_in, c_out, GDN_SIGMAS[1], GDN_MULTIPLIERS, max_order=2)


def _fov(pool):
    def wrap(inner):

        return FoveatedScaleChannels(inner, FOV_FACTORS, pool)

    return wrap


register_method_layer(
    "conv3d",
    _conv3d,
    f"the pixel pool's {len(PIXEL_POOL_SIZES)} resized 7x7 kernels stacked on a size axis, then 3x7x7 convolutions "
    "over (size, y, x), max over sizes",
    _scale_max,
)
register_method_layer("STN", _stn, "a spatial transformer (learned affine resampling) before 7x7 convs")
register_method_layer(
    "Gaussian derivative",
    _gdn,
    "scale-normalised Gaussian derivatives up to order 2 (sigma 1, then 2 px) in 7 scale channels "
    "(x0.5 .. x4), max over channels",
    _scale_max,
)
register_method_layer(
    "FovMax", _cnn, "7x7 convs run on the image rescaled x0.25 .. x2.83 (8 foveated channels), max over channels",
    wrap=_fov("max"),
)  # fmt: skip
register_method_layer("FovAvg", _cnn, "as FovMax, mean over the channels that see the pixel", wrap=_fov("avg"))


def describe() -> list[str]:
    """Markdown lines saying what one layer of each T -> T method is (for the reports)."""
    return [f"- {m.name}: {m.description}" for m in METHOD_LAYERS.values()]


def layer_modules(module: nn.Module) -> list[ScaleEquivariantModule]:
    """The scale-equivariant layers inside ``module`` (for contract checks)."""
    return [m for m in module.modules() if isinstance(m, ScaleEquivariantModule)]
