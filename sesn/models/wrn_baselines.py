"""STL-10 baselines (docs/baselines.md): WRN-16-8 with SI-ConvNet, SiCNN, SS-CNN and
DSS convolutions, registered under the reference names.

``wrn_16_8_ss`` reproduces the reference's bug by default: its blocks do not receive
``size_range``, so every block conv is single-scale on a 3x3 grid (only the stem is
multi-scale); ``get_model("wrn_16_8_ss", fixed=True)`` builds the intended model instead
(block convs with kernel sizes 3, 5, 7; a different parameter count of non-trainable
basis parameters).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sesn.baselines.dss import BesselConv2d, Dconv2d, ScaleMaxProjection
from sesn.baselines.si_convnet import SIConv2d
from sesn.baselines.sicnn import ColumnMax, SiCNNConv2d
from sesn.baselines.ss_cnn import ScaleConvSteering
from sesn.models.common import InputCheck
from sesn.models.registry import register


def _init(model: nn.Module, extra=()) -> None:
    """The reference WRN init loop over conv-like modules, BN and Linear."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, SiCNNConv2d)):
            n = m.weight.shape[-1] * m.weight.shape[-2] * m.weight.shape[0]
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
        elif isinstance(m, Dconv2d):
            m.reset_parameters()
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)


class Block(nn.Module):
    """Pre-activation block with pluggable convs/norms: ``a = relu(bn1(x))``,
    ``out = conv2(dropout(relu(bn2(conv1(a)))))``, ``x + out`` or ``shortcut(a) + out``."""

    def __init__(self, bn1, conv1, bn2, conv2, shortcut, dropout):
        super().__init__()
        self.bn1, self.conv1, self.bn2, self.conv2, self.shortcut = bn1, conv1, bn2, conv2, shortcut
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        a = F.relu(self.bn1(x))
        out = self.conv2(self.dropout(F.relu(self.bn2(self.conv1(a)))))
        return (x if self.shortcut is None else self.shortcut(a)) + out


class BaselineWRN(nn.Module):
    def __init__(self, name, stem, blocks, tail_bn, project, fc, in_size=96, pre=None):
        super().__init__()
        self.check = InputCheck(3, (in_size, in_size), name)
        self.pre = pre or nn.Identity()
        self.stem, self.blocks, self.bn, self.project, self.fc = stem, nn.Sequential(*blocks), tail_bn, project, fc

    def forward(self, x):
        x = self.blocks(self.stem(self.pre(self.check(x))))
        x = F.relu(self.bn(x))
        x = self.project(x)
        return self.fc(torch.flatten(x, 1))


class _AvgThen(nn.Module):
    """Global average pool, then an optional reduction (SiCNN: max over columns)."""

    def __init__(self, after=None):
        super().__init__()
        self.after = after

    def forward(self, x):
        x = F.adaptive_avg_pool2d(x, 1)
        return self.after(x) if self.after is not None else x


def _plan(widths, depth=16):
    n = (depth - 4) // 6
    for g, stride in enumerate((1, 2, 2)):
        for i in range(n):
            yield (widths[g] if i == 0 else widths[g + 1]), widths[g + 1], (stride if i == 0 else 1)


def wrn_kanazawa(
    name="wrn_16_8_kanazawa",
    widths=(16, 128, 256, 512),
    num_classes=10,
    dropout=0.3,
    scales=(0.5, 1.0, 2.0),
    in_size=96,
):
    conv = lambda ci, co, s: SIConv2d(ci, co, 3, scales, stride=s, padding=1, bias=False)  # noqa: E731
    blocks = [
        Block(
            nn.BatchNorm2d(ci),
            conv(ci, co, s),
            nn.BatchNorm2d(co),
            conv(co, co, 1),
            None if ci == co else nn.Conv2d(ci, co, 1, s, bias=False),
            dropout,
        )
        for ci, co, s in _plan(widths)
    ]
    model = BaselineWRN(
        name,
        conv(3, widths[0], 1),
        blocks,
        nn.BatchNorm2d(widths[3]),
        _AvgThen(),
        nn.Linear(widths[3], num_classes),
        in_size,
    )
    _init(model)
    return model


def wrn_xu(
    name="wrn_16_8_xu", widths=(16, 128, 256, 512), num_classes=10, dropout=0.3, scales=(0.67, 1.0, 1.5), in_size=96
):
    s_n = len(scales)
    conv = lambda ci, co, k, s: SiCNNConv2d(ci, co, k, scales, stride=s, num_input_scales=s_n)  # noqa: E731
    blocks = [
        Block(
            nn.BatchNorm2d(s_n * ci),
            conv(ci, co, 3, s),
            nn.BatchNorm2d(s_n * co),
            conv(co, co, 3, 1),
            None if ci == co else conv(ci, co, 1, s),
            dropout,
        )
        for ci, co, s in _plan(widths)
    ]
    stem = SiCNNConv2d(3, widths[0], 3, scales, num_input_scales=1)
    model = BaselineWRN(
        name,
        stem,
        blocks,
        nn.BatchNorm2d(s_n * widths[3]),
        _AvgThen(ColumnMax(s_n)),
        nn.Linear(widths[3], num_classes),
        in_size,
    )
    _init(model)
    return model


def wrn_ss(name="wrn_16_8_ss", widths=(11, 88, 176, 352), num_classes=10, dropout=0.3, fixed=False, in_size=96):
    block_sizes = [3, 5, 7] if fixed else [3]  # the reference passes no size_range to its blocks
    conv = lambda ci, co, s, sizes: ScaleConvSteering(ci, co, 3, sizes, k_range=(1,), stride=s, relu=False)  # noqa: E731
    blocks = [
        Block(
            nn.BatchNorm2d(ci),
            conv(ci, co, s, block_sizes),
            nn.BatchNorm2d(co),
            conv(co, co, 1, block_sizes),
            None if ci == co else nn.Conv2d(ci, co, 1, s, bias=False),
            dropout,
        )
        for ci, co, s in _plan(widths)
    ]
    stem = conv(3, widths[0], 1, [3, 5, 7])
    model = BaselineWRN(
        name, stem, blocks, nn.BatchNorm2d(widths[3]), _AvgThen(), nn.Linear(widths[3], num_classes), in_size
    )
    # the WRN loop re-initialises the plain 1x1 shortcuts; steerable layers keep their own init
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.weight.shape[0] * m.weight.shape[-1] ** 2)))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    return model


def wrn_dss(name="wrn_16_8_dss", num_classes=10, dropout=0.3, in_size=96):
    widths = [16, 128, math.ceil(32 / math.sqrt(8 / 7)) * 8, 512]  # [16, 128, 240, 512]
    d = lambda ci, co, ks, io, s=1: Dconv2d(ci, co, (ks, 3, 3) if ks else (1, 1, 1), 2.0, io, stride=s, init="delta")  # noqa: E731
    c1, c2, c3 = widths[1:]
    blocks = [
        Block(
            nn.BatchNorm3d(16),
            d(16, c1, 2, (4, 4)),
            nn.BatchNorm3d(c1),
            d(c1, c1, 1, (3, 3)),
            d(16, c1, 0, (3, 3)),
            dropout,
        ),
        Block(nn.BatchNorm3d(c1), d(c1, c1, 1, (3, 3)), nn.BatchNorm3d(c1), d(c1, c1, 1, (3, 3)), None, dropout),
        Block(
            nn.BatchNorm3d(c1),
            d(c1, c2, 2, (3, 3), 2),
            nn.BatchNorm3d(c2),
            d(c2, c2, 1, (2, 2)),
            d(c1, c2, 0, (2, 2), 2),
            dropout,
        ),
        Block(nn.BatchNorm3d(c2), d(c2, c2, 1, (2, 2)), nn.BatchNorm3d(c2), d(c2, c2, 1, (2, 2)), None, dropout),
        Block(
            nn.BatchNorm3d(c2),
            d(c2, c3, 1, (2, 2), 2),
            nn.BatchNorm3d(c3),
            d(c3, c3, 1, (2, 2)),
            d(c2, c3, 0, (2, 2), 2),
            dropout,
        ),
        Block(nn.BatchNorm3d(c3), d(c3, c3, 1, (2, 2)), nn.BatchNorm3d(c3), d(c3, c3, 1, (2, 2)), None, dropout),
    ]
    stem = Dconv2d(3, 16, (1, 3, 3), 2.0, (4, 4), init="delta")
    model = BaselineWRN(
        name,
        stem,
        blocks,
        nn.BatchNorm3d(c3),
        nn.Sequential(ScaleMaxProjection(), _AvgThen()),
        nn.Linear(c3, num_classes),
        in_size,
        pre=BesselConv2d(3, 2.0, 0.5, 4),
    )
    _init(model)
    return model


def _register(name, factory, params, row, note=""):
    register(
        name,
        factory,
        metadata=dict(
            dataset="stl10",
            input_shape=(3, 96, 96),
            num_params=params,
            column="STL-10",
            row=row,
            reproduce=f"sesn reproduce --profile paper --dataset stl10 --models {name}",
            family="baseline",
            note=note or "baseline of the paper's STL-10 comparison (docs/baselines.md)",
            reproduce_columns=("STL-10",),
            profiles=("paper",),
        ),
    )


_register("wrn_16_8_kanazawa", wrn_kanazawa, 10_961_370, "SI-ConvNet")
_register("wrn_16_8_xu", wrn_xu, 10_975_770, "SiCNN")
_register(
    "wrn_16_8_ss",
    wrn_ss,
    10_846_835,
    "SS-CNN",
    "reproduces the reference's single-scale block bug; fixed=True builds the intended model",
)
_register("wrn_16_8_dss", wrn_dss, 10_939_482, "DSS")
