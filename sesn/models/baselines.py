"""Baseline models of the paper's MNIST-scale comparison (SPEC-baselines.md), registered
under the reference names. Implemented: SI-ConvNet (``mnist_kanazawa_*``), SiCNN
(``mnist_xu_*``), DSS (``mnist_dss_{scalar,vector}_*``); SEVF, SS-CNN and the STL-10
baselines are not implemented yet.
"""

from __future__ import annotations

from torch import nn

from sesn.baselines.dss import BesselConv2d, Dconv2d, ScaleMaxProjection
from sesn.baselines.si_convnet import SIConv2d
from sesn.baselines.sicnn import ColumnMax, SiCNNConv2d
from sesn.models.mnist import PAPER_CHANNELS, PAPER_HIDDEN, _front, _head
from sesn.models.registry import register_model

PYRAMID = [0.3, 0.45, 0.67, 1.0, 1.49, 2.23, 3.33]


def mnist_kanazawa(name, upsample, channels=PAPER_CHANNELS, hidden=PAPER_HIDDEN, num_classes=10, dropout=0.7, scales=PYRAMID):
    pool = 8 if upsample else 4
    layers = _front(name, upsample, 28)
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        layers += [SIConv2d(c_in, c, 7, scales, padding=3), nn.ReLU(True), nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2), nn.BatchNorm2d(c)]
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
            layers += [conv, nn.ReLU(True), nn.MaxPool3d((1, pool, pool), padding=(0, 2, 2)) if last else nn.MaxPool3d((1, 2, 2)), nn.BatchNorm3d(c)]
        else:
            layers += [BesselConv2d(c_in, 2.0, 0.25, 2), conv, ScaleMaxProjection(), nn.ReLU(True), nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2), nn.BatchNorm2d(c)]
        c_in = c
    if vector:
        layers.append(ScaleMaxProjection())
    return nn.Sequential(*layers, *_head(4 * channels[-1], hidden, num_classes, dropout))


def _register(name, build, params, row):
    size = "56" if name.endswith("56") else "28"
    register_model(
        name,
        dataset="mnist-scale",
        input_shape=(1, 28, 28),
        num_params=params,
        column=f"{size}x{size} and {size}x{size} +",
        row=row,
        reproduce=f"sesn reproduce --profile paper --models {name}",
        family="baseline",
        note="baseline of the paper's comparison (SPEC-baselines.md); published numbers not in SPEC",
    )(build)


for _size in ("28", "56"):
    _up = _size == "56"
    _register(f"mnist_kanazawa_{_size}", (lambda n, u: lambda **kw: mnist_kanazawa(n, u, **kw))(f"mnist_kanazawa_{_size}", _up), 494_549, "SI-ConvNet")
    _register(f"mnist_xu_{_size}", (lambda n, u: lambda **kw: mnist_xu(n, u, **kw))(f"mnist_xu_{_size}", _up), 496_639, "SiCNN")
    _register(f"mnist_dss_scalar_{_size}", (lambda n, u: lambda **kw: mnist_dss(n, u, False, **kw))(f"mnist_dss_scalar_{_size}", _up), 494_359, "DSS scalar")
    _register(f"mnist_dss_vector_{_size}", (lambda n, u: lambda **kw: mnist_dss(n, u, True, **kw))(f"mnist_dss_vector_{_size}", _up), 494_359, "DSS vector")
