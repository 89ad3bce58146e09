"""A tiny external plug-in, as a user would write it in their own package: it registers

* a T -> H layer of its own (``ExampleLift``: a steerable lift built on our basis, scales
  of its choosing) as a property-test case, plus a deliberately broken copy when
  ``SESN_EXAMPLE_BROKEN=1`` (its scale axis reversed: the tests must fail);
* a T -> T method (``example blur-conv``: a fixed Gaussian blur, then a 7x7 conv), one
  registration (``register_method``): its layer joins the catalogue (both reports, the
  benchmarks' method group), its model ``stir_example_blur_conv`` the generalization
  benchmark (``--models stir_example_blur_conv``; ``tags=("cpu",)`` would put it in the cpu
  profile's default sweep);
* a model ``example_net_28`` placed in the reproduce table (row "Example net", columns 28
  and 28+, in the smoke profile's default sweep) and benchmarked beside the CNN.

Nothing in sesn is edited: load it with ``--import sesn_example_plugin`` (folder on
PYTHONPATH), ``SESN_IMPORT=sesn_example_plugin``, or an entry point.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from sesn.models.method import Method, register_method
from sesn.models.method_layers import MethodLayer
from sesn.models.mnist import mnist_cnn
from sesn.models.registry import register
from sesn.nn import SESConv_Z2_H
from sesn.nn.base import ScaleEquivariantModule
from sesn.testing.plugins import register_equivariance_case

SCALES = [1.2, 1.7, 2.4]


class ExampleLift(ScaleEquivariantModule):
    """T -> H: our steerable lift with Hermite basis A at the plug-in's scales."""

    input_kind, output_kind = "T", "H"

    def __init__(self, in_channels, out_channels, reverse_scales=False):
        super().__init__()
        self.inner = SESConv_Z2_H(in_channels, out_channels, 11, 5, SCALES, padding=5, basis_type="A")
        self.scales, self.reverse_scales = SCALES, reverse_scales

    def forward(self, x):
        y = self.inner(x)
        return y.flip(2) if self.reverse_scales else y

    def evaluate_output_shape(self, input_shape):
        return self.inner.evaluate_output_shape(input_shape)


class BlurConv(ScaleEquivariantModule):
    """T -> T: Gaussian blur (sigma 1 px), then a 7x7 conv."""

    input_kind, output_kind = "T", "T"

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, padding=3)
        g = torch.exp(-(torch.arange(-3.0, 4.0) ** 2) / 2)
        self.register_buffer("g", g / g.sum(), persistent=False)

    def forward(self, x):
        c = x.shape[1]
        g = self.g.to(x.dtype)
        x = F.conv2d(x, g.view(1, 1, 1, 7).expand(c, 1, 1, 7), padding=(0, 3), groups=c)
        x = F.conv2d(x, g.view(1, 1, 7, 1).expand(c, 1, 7, 1), padding=(3, 0), groups=c)
        return self.conv(x)

    def evaluate_output_shape(self, input_shape):
        b, _, h, w = input_shape
        return (b, self.conv.out_channels, h, w)


def _blur_conv(c_in, c_out, first):
    return BlurConv(c_in, c_out)


def _example_lift():
    return ExampleLift(1, 6)


def _broken_lift():
    return ExampleLift(1, 6, reverse_scales=True)


register_method(
    Method(
        "stir_example_blur_conv",
        "example blur-conv",
        layer=MethodLayer("example blur-conv", _blur_conv, "Gaussian blur (1 px), then a 7x7 conv (plug-in)"),
    )
)
register(
    "example_net_28",
    mnist_cnn,
    "example_net_28",
    False,
    channels=(4, 6, 8),
    hidden=16,
    metadata=dict(
        dataset="mnist-scale",
        input_shape=(1, 28, 28),
        row="Example net",
        reproduce_columns=("28", "28+"),
        profiles=("smoke",),
        family="plugin",
    ),
)

common = dict(kind="T->H", scales=SCALES, in_channels=1, out_channels=6, kernel_size=11, effective_size=5)
register_equivariance_case("example lift", _example_lift, **common)
if os.environ.get("SESN_EXAMPLE_BROKEN") == "1":
    register_equivariance_case("example lift (broken)", _broken_lift, **common)
if os.environ.get("SESN_EXAMPLE_REGRESSION") == "1":  # the old rule: tolerances measured on the layer itself
    register_equivariance_case("example lift (regression)", _example_lift, **common, level="regression")
