"""Baseline models of the paper's MNIST-scale comparison (docs/baselines.md), registered
under the reference names: SI-ConvNet (``mnist_kanazawa_*``), SiCNN (``mnist_xu_*``),
SEVF (``mnist_sevf_{scalar,vector}_*``), DSS (``mnist_dss_{scalar,vector}_*``) and SS-CNN
(``mnist_ss_*``). The STL-10 baselines are not implemented yet.
"""

from __future__ import annotations

from torch import nn

from sesn.baselines.dss import BesselConv2d, Dconv2d, ScaleMaxProjection
from sesn.baselines.sevf import Magnitude, ScaleConvScalar, ScaleConvVector, VectorBatchNorm, VectorMaxPool
from sesn.baselines.si_convnet import SIConv2d
from sesn.baselines.sicnn import ColumnMax, SiCNNConv2d
from sesn.baselines.ss_cnn import ScaleConvSteering
from sesn.models.method_layers import PYRAMID  # one definition, shared with the reports
from sesn.models.mnist import PAPER_CHANNELS, PAPER_HIDDEN, _front, _head
from sesn.models.registry import register


def mnist_kanazawa(
    name, upsample, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN, num_classes=10, dropout=0.7, scales=PYRAMID
):
    pool = 8 if upsample else 4
    layers = _front(name, upsample, 28)
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        layers += [
            SIConv2d(c_in, c, 7, scales, padding=3),
            nn.ReLU(True),
            nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
            nn.BatchNorm2d(c),
        ]
        c_in = c
    return nn.Sequential(*layers, *_head(4 * channels[-1], hidden, num_classes, dropout))


def mnist_xu(name, upsample, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN, num_classes=10, dropout=0.7, scales=PYRAMID):
    pool = 8 if upsample else 4
    s = len(scales)
    layers = _front(name, upsample, 28)
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        layers += [
            SiCNNConv2d(c_in, c, 7, scales, num_input_scales=1 if i == 0 else s),
            nn.ReLU(True),
            nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
            nn.BatchNorm2d(s * c),
        ]
        c_in = c
    return nn.Sequential(*layers, ColumnMax(s), *_head(4 * channels[-1], hidden, num_classes, dropout))


def mnist_dss(name, upsample, vector, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN, num_classes=10, dropout=0.7):
    pool = 8 if upsample else 4
    layers = _front(name, upsample, 28)
    c_in = 1
    if vector:
        layers.append(BesselConv2d(1, 2.0, 0.25, 2))
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        conv = Dconv2d(c_in, c, (1, 7, 7), 2.0, (2, 2))
        if vector:
            layers += [
                conv,
                nn.ReLU(True),
                nn.MaxPool3d((1, pool, pool), padding=(0, 2, 2)) if last else nn.MaxPool3d((1, 2, 2)),
                nn.BatchNorm3d(c),
            ]
        else:
            layers += [
                BesselConv2d(c_in, 2.0, 0.25, 2),
                conv,
                ScaleMaxProjection(),
                nn.ReLU(True),
                nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
                nn.BatchNorm2d(c),
            ]
        c_in = c
    if vector:
        layers.append(ScaleMaxProjection())
    return nn.Sequential(*layers, *_head(4 * channels[-1], hidden, num_classes, dropout))


class HeadC(nn.Sequential):
    """Head C: flatten to [B, F, 1, 1] -> 1x1 conv F->256 (bias) -> BN2d -> ReLU -> Dropout
    -> 1x1 conv 256->10 -> [B, 10] (SEVF, SS-CNN)."""

    def __init__(self, in_features, hidden=PAPER_HIDDEN, num_classes=10, dropout=0.7):
        super().__init__(
            nn.Conv2d(in_features, hidden, 1),
            nn.BatchNorm2d(hidden),
            nn.ReLU(True),
            nn.Dropout(dropout),
            nn.Conv2d(hidden, num_classes, 1),
        )

    def forward(self, x):
        return super().forward(x.reshape(x.shape[0], -1, 1, 1)).flatten(1)


def mnist_sevf(name, upsample, vector, num_classes=10, dropout=0.7):
    pool = 8 if upsample else 4
    layers = _front(name, upsample, 28)
    if not vector:
        channels, c_in = PAPER_CHANNELS, 1
        for i, c in enumerate(channels):
            last = i == len(channels) - 1
            layers += [
                ScaleConvScalar(c_in, c, 7, 3),
                Magnitude(),
                nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
            ]
            if not last:
                layers.append(nn.BatchNorm2d(c))  # no BN after stage 3, as in the reference
            c_in = c
        return nn.Sequential(*layers, HeadC(4 * channels[-1], num_classes=num_classes, dropout=dropout))
    c1, c2, c3 = 23, 45, 68
    layers += [
        ScaleConvScalar(1, c1, 7, 3), VectorMaxPool(2), VectorBatchNorm(c1),
        ScaleConvVector(c1, c2, 7, 3), VectorMaxPool(2), VectorBatchNorm(c2),
        ScaleConvVector(c2, c3, 7, 3), VectorMaxPool(pool, padding=2), Magnitude(),
    ]  # fmt: skip
    return nn.Sequential(*layers, HeadC(4 * c3, num_classes=num_classes, dropout=dropout))


class _SSNet(nn.Sequential):
    def __init__(self, layers, bn3):
        super().__init__(*layers)
        self.bn3 = bn3  # defined and never used by the reference (180 trainable parameters)

    def forward(self, x):
        for name, module in self.named_children():
            if name != "bn3":
                x = module(x)
        return x


def mnist_ss(name, upsample, num_classes=10, dropout=0.7):
    pool = 8 if upsample else 4
    sizes = [7, 9, 11, 13, 15, 17] if upsample else [5, 7, 9, 11, 13]
    layers = _front(name, upsample, 28)
    c_in = 1
    for i, c in enumerate((30, 60, 90)):
        last = i == 2
        layers += [
            ScaleConvSteering(c_in, c, 11, sizes),
            nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
            nn.BatchNorm2d(c),
        ]
        c_in = c
    return _SSNet(layers + [HeadC(4 * 90, num_classes=num_classes, dropout=dropout)], nn.BatchNorm2d(90))


def _register(name, factory, *args, params, row):
    size = "56" if name.endswith("56") else "28"
    register(
        name,
        factory,
        name,
        size == "56",
        *args,
        metadata=dict(
            dataset="mnist-scale",
            input_shape=(1, 28, 28),
            num_params=params,
            column=f"{size}x{size} and {size}x{size} +",
            row=row,
            reproduce=f"sesn reproduce --profile paper --models {name}",
            family="baseline",
            note="baseline of the paper's comparison (docs/baselines.md); "
            "its published numbers are not reproduced here",
            reproduce_columns=(size, size + "+"),
            profiles=("paper",),
        ),
    )


for _size in ("28", "56"):
    _register(f"mnist_kanazawa_{_size}", mnist_kanazawa, params=494_549, row="SI-ConvNet")
    _register(f"mnist_xu_{_size}", mnist_xu, params=496_639, row="SiCNN")
    _register(f"mnist_dss_scalar_{_size}", mnist_dss, False, params=494_359, row="DSS scalar")
    _register(f"mnist_dss_vector_{_size}", mnist_dss, True, params=494_359, row="DSS vector")
    _register(f"mnist_sevf_scalar_{_size}", mnist_sevf, False, params=494_425, row="SEVF scalar")
    _register(f"mnist_sevf_vector_{_size}", mnist_sevf, True, params=475_475, row="SEVF vector")
    _register(f"mnist_ss_{_size}", mnist_ss, params=493_688, row="SS-CNN")
