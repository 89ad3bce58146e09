"""STL-10 models (docs/models.md): WRN-16-8 and its SESN variants A, B, C.

Pre-activation wide ResNet, 2 blocks per group, widths [16, 128, 256, 512], strides
1/2/2, dropout 0.3 between the two convs of a block. SESN variants replace every conv by
a steerable one (kernel 7, effective_size 3, basis A, 3 scales): the stem by T->H, block
convs by H->H, 1x1 shortcuts by ``SESConv_H_H_1x1``; BN by scale BN; the final features
are max-projected over scales, then BN, ReLU, global average pool, linear.

* ``ses_a``: scales 0.9 * 1.41**i (not rounded, as in the authors' code), no scale
  pooling inside.
* ``ses_b``: as A, except the first block of groups 2 and 3: its conv1 is a max projection
  over scales followed by a fresh T->H conv (kernel 7, effective size 3, the block's
  stride), applied to the block's BN-ReLU'd H input, and its shortcut is a 1x1 H->H conv
  of that same H input (all scales) -- the authors' layout, so their checkpoints load.
* ``ses_c``: scales 1.1 * 1.41**i (not rounded); the first H->H conv of the first block has
  scale_size 2.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

from sesn.models.common import InputCheck, wrn_init_
from sesn.models.registry import register
from sesn.nn import ScaleBatchNorm, SESConv_H_H, SESConv_H_H_1x1, SESConv_Z2_H, SESMaxProjection
from sesn.nn.recompute import preactivation, recompute_block, recompute_saved, set_memory_saving

WRN_WIDTHS = (16, 128, 256, 512)


class PreActBlock(nn.Module):
    """Pre-activation residual block ``x + conv2(dropout(relu(bn2(conv1(relu(bn1(x)))))))``
    (shortcut ``shortcut(relu(bn1(x)))`` when the width changes), with the activation-memory
    levels of :mod:`sesn.nn.recompute`: ``memory_saving`` = ``"off"`` (plain autograd),
    ``"layers"`` (the batch-norm -> ReLU (-> dropout) outputs are recomputed in backward
    instead of kept), ``"blocks"`` (only the block input is kept; the block is recomputed in
    backward, with ``"layers"`` inside). Same outputs and gradients at every level."""

    memory_saving = "off"

    def forward(self, x):
        if self.training and torch.is_grad_enabled() and self.memory_saving != "off":
            if self.memory_saving == "blocks":
                params = [p for p in self.parameters() if p.requires_grad]
                return recompute_block(functools.partial(self._forward, recompute=True), x, params)
            return self._forward(x, recompute=True)
        return self._forward(x)

    def _forward(self, x, recompute=False):
        a, recipe = preactivation(self.bn1, x, recompute=recompute)
        with recompute_saved(recipe):
            c1 = self.conv1(a)
            skip = x if self.equal else self.shortcut(a)
        del a
        d, recipe = preactivation(self.bn2, c1, self.dropout, recompute=recompute)
        with recompute_saved(recipe):
            out = self.conv2(d)
        return skip + out


class PlainBlock(PreActBlock):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.dropout = nn.Dropout(dropout)
        self.equal = c_in == c_out
        self.shortcut = None if self.equal else nn.Conv2d(c_in, c_out, 1, stride, 0, bias=False)


class SESBlock(PreActBlock):
    """Pre-activation block on H features; ``lift=True`` (variant B) makes conv1 a max
    projection followed by a fresh T->H conv of the BN-ReLU'd H input."""

    def __init__(
        self,
        c_in,
        c_out,
        stride,
        dropout,
        scales,
        scale_size=1,
        lift=False,
        kernel_size=7,
        effective_size=3,
        basis_type="A",
    ):
        super().__init__()
        kw = dict(
            kernel_size=kernel_size,
            effective_size=effective_size,
            scales=scales,
            padding=kernel_size // 2,
            basis_type=basis_type,
        )
        self.equal = c_in == c_out
        self.bn1 = ScaleBatchNorm(c_in)
        if lift:
            self.conv1 = nn.Sequential(SESMaxProjection(), SESConv_Z2_H(c_in, c_out, stride=stride, **kw))
        else:
            self.conv1 = SESConv_H_H(c_in, c_out, scale_size, stride=stride, **kw)
        self.shortcut = None if self.equal else SESConv_H_H_1x1(c_in, c_out, stride, num_scales=len(scales), bias=False)
        self.bn2 = ScaleBatchNorm(c_out)
        self.conv2 = SESConv_H_H(c_out, c_out, 1, **kw)
        self.dropout = nn.Dropout(dropout)


class WideResNet(nn.Module):
    """WRN-depth-k (pre-activation) and its SESN variants. ``variant``: None (plain), "a", "b", "c"."""

    def __init__(
        self,
        depth=16,
        widths=WRN_WIDTHS,
        num_classes=10,
        dropout=0.3,
        variant=None,
        scales=None,
        in_size=96,
        name="wrn",
        memory_saving="off",
    ):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n+4, got {depth}")
        n = (depth - 4) // 6
        self.variant = variant
        self.check = InputCheck(3, (in_size, in_size), name)
        blocks = []
        if variant is None:
            self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
            for g, stride in enumerate((1, 2, 2)):
                for i in range(n):
                    blocks.append(
                        PlainBlock(
                            widths[g] if i == 0 else widths[g + 1], widths[g + 1], stride if i == 0 else 1, dropout
                        )
                    )
            self.project = nn.Identity()
        else:
            self.stem = SESConv_Z2_H(3, widths[0], 7, 3, scales, padding=3, basis_type="A")
            for g, stride in enumerate((1, 2, 2)):
                for i in range(n):
                    first = i == 0
                    blocks.append(
                        SESBlock(
                            widths[g] if first else widths[g + 1],
                            widths[g + 1],
                            stride if first else 1,
                            dropout,
                            scales,
                            scale_size=2 if (variant == "c" and g == 0 and first) else 1,
                            lift=variant == "b" and g > 0 and first,
                        )
                    )
            self.project = SESMaxProjection()
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        wrn_init_(self)
        set_memory_saving(self, memory_saving)

    def forward(self, x):
        x = self.blocks(self.stem(self.check(x)))
        x = F.relu(self.bn(self.project(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# 0.9 * 1.41**i and 1.1 * 1.41**i exactly as the authors compute them (no rounding), so a
# checkpoint's stored basis matches ours
STL_SCALES = {
    "a": tuple(0.9 * 1.41**i for i in range(3)),
    "b": tuple(0.9 * 1.41**i for i in range(3)),
    "c": tuple(1.1 * 1.41**i for i in range(3)),
}


def _register(name, variant, num_params, note=""):
    register(
        name,
        WideResNet,
        variant=variant,
        scales=list(STL_SCALES[variant]) if variant else None,
        name=name,
        metadata=dict(
            dataset="stl10",
            input_shape=(3, 96, 96),
            num_params=num_params,
            column="STL-10",
            row="WRN-16-8" if variant is None else f"SESN ({variant.upper()})",
            reproduce=f"sesn reproduce --profile paper --dataset stl10 --models {name}",
            family="wrn" if variant is None else "wrn_ses",
            note=note,
            reproduce_columns=("STL-10",),
            profiles=("paper",),
        ),
    )


_register("wrn_16_8", None, 10_961_370, "paper: about 11.5 % test error (docs/models.md, approximate)")
_register("wrn_16_8_ses_a", "a", 10_961_370, "paper: best SESN about 8.5 % (docs/models.md, approximate)")
_register("wrn_16_8_ses_b", "b", 10_961_370, "paper: best SESN about 8.5 % (docs/models.md, approximate)")
_register("wrn_16_8_ses_c", "c", 10_979_802, "paper: best SESN about 8.5 % (docs/models.md, approximate)")
