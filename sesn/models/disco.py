"""DISCO's own MNIST-scale model, with DISCO's published basis (docs/optimised-basis.md).

As DISCO defines it: x2 nearest upsampling; T->H 1->32 (bias), ReLU, scale-wise 2x2
average pooling, scale BN; H->H 32->63 (scale_size 1, bias), ReLU, average pooling, scale
BN; H->H 63->95 (bias); max projection over scales, ReLU, MaxPool2d(7, stride 1),
AvgPool2d(2, stride 4), BN2d; then the shared head Linear(4*95 -> 256, no bias), BN1d,
ReLU, Dropout 0.7, Linear(256 -> 10). Kernel 15, effective size 7, scales
[1.0, 1.26, 1.59, 2.0], basis "DISCO" with sigma_min 1.9 and mult 1.5 (plain column) or
1.9 (the "+" column). Building it needs DISCO's basis file (sesn.basis.disco); without it
the builder raises DiscoBasisError saying where it looked.
"""

from __future__ import annotations

from torch import nn

from sesn.basis.registry import basis_kind
from sesn.models.mnist import _front, _head
from sesn.models.registry import register
from sesn.nn import ScaleAvgPool2d, ScaleBatchNorm, SESConv_H_H, SESConv_Z2_H, SESMaxProjection

CHANNELS = (32, 63, 95)


def disco_mnist(
    name: str, mult: float, num_classes: int = 10, dropout: float = 0.7, in_size: int = 28
) -> nn.Sequential:
    published = basis_kind("DISCO").configurations["mnist"]  # kernel 15, effective size 7, scales, disco_sigma
    kw = {**published, "scales": list(published["scales"]), "mult": mult}
    kw.update(padding=kw["kernel_size"] // 2, bias=True, basis_type="DISCO")
    c1, c2, c3 = CHANNELS
    layers = _front(name, True, in_size) + [
        SESConv_Z2_H(1, c1, **kw), nn.ReLU(True), ScaleAvgPool2d(2), ScaleBatchNorm(c1),
        SESConv_H_H(c1, c2, 1, **kw), nn.ReLU(True), ScaleAvgPool2d(2), ScaleBatchNorm(c2),
        SESConv_H_H(c2, c3, 1, **kw),
        SESMaxProjection(), nn.ReLU(True), nn.MaxPool2d(7, stride=1), nn.AvgPool2d(2, stride=4), nn.BatchNorm2d(c3),
    ]  # fmt: skip
    return nn.Sequential(*layers, *_head(4 * c3, 256, num_classes, dropout))


def _register(name: str, mult: float, plus: bool) -> None:
    register(
        name,
        disco_mnist,
        name,
        mult,
        metadata=dict(
            dataset="mnist-scale",
            input_shape=(1, 28, 28),
            num_params=494_549,
            column="28x28 +" if plus else "28x28",
            row="DISCO (its published basis)",
            reproduce=f"sesn reproduce --profile paper --models {name}",
            family="disco_published",
            basis="DISCO",
            note=f"DISCO's own model and basis (sigma_min 1.9, mult {mult}); "
            "needs DISCO's basis file (sesn.basis.disco)",
            reproduce_columns=("28+",) if plus else ("28",),
        ),
    )


_register("disco_mnist_28", 1.5, False)
_register("disco_mnist_28p", 1.9, True)
