"""MNIST-scale models of the paper (docs/models.md): CNN, SESN scalar, SESN vector.

Backbone: three stages of 32, 63, 95 channels, each ``conv -> ReLU -> max-pool 2 -> BN``
(the last pools with ``pool_size`` and padding 2), then
``Linear(4*95 -> 256, no bias) -> BN1d -> ReLU -> Dropout 0.7 -> Linear(256 -> 10)``.
The 56 variants upsample the 28x28 input x2 (nearest) inside the model and pool 8.
"""

from __future__ import annotations

import dataclasses

from torch import nn

from sesn.models.common import InputCheck
from sesn.models.mnist_configs import MNIST_SES_CONFIGS, SESConfig, layer_kwargs
from sesn.models.registry import register
from sesn.nn import ScaleBatchNorm, ScaleMaxPool2d, SESConv_H_H, SESConv_Z2_H, SESMaxProjection

PAPER_CHANNELS = (32, 63, 95)
PAPER_HIDDEN = 256
MNIST_PARAMS = 494_549

PUBLISHED = {  # test error %, mean +- std over 6 realizations (docs/models.md, the paper)
    "mnist_ses_scalar_28": (2.10, 0.10),
    "mnist_ses_scalar_28p": (1.79, 0.09),
    "mnist_ses_scalar_56": (1.74, 0.09),
    "mnist_ses_scalar_56p": (1.50, 0.07),
    "mnist_ses_vector_28": (2.08, 0.09),
    "mnist_ses_vector_28p": (1.76, 0.08),
    "mnist_ses_vector_56": (1.68, 0.06),
    "mnist_ses_vector_56p": (1.42, 0.07),
}


def _head(in_features: int, hidden: int, num_classes: int, dropout: float) -> list[nn.Module]:
    return [
        nn.Flatten(),
        nn.Linear(in_features, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    ]


def _front(name: str, upsample: bool, in_size: int) -> list[nn.Module]:
    mods: list[nn.Module] = [InputCheck(1, (in_size, in_size), name)]
    if upsample:
        mods.append(nn.Upsample(scale_factor=2, mode="nearest"))
    return mods


def mnist_cnn(
    name: str,
    upsample: bool,
    channels=PAPER_CHANNELS,
    hidden=PAPER_HIDDEN,
    num_classes=10,
    dropout=0.7,
    kernel_size=7,
    in_size=28,
) -> nn.Sequential:
    pool = 8 if upsample else 4
    c1, c2, c3 = channels
    p = kernel_size // 2
    layers = _front(name, upsample, in_size) + [
        nn.Conv2d(1, c1, kernel_size, padding=p), nn.ReLU(True), nn.MaxPool2d(2), nn.BatchNorm2d(c1),
        nn.Conv2d(c1, c2, kernel_size, padding=p), nn.ReLU(True), nn.MaxPool2d(2), nn.BatchNorm2d(c2),
        nn.Conv2d(c2, c3, kernel_size, padding=p), nn.ReLU(True), nn.MaxPool2d(pool, padding=2), nn.BatchNorm2d(c3),
    ] + _head(4 * c3, hidden, num_classes, dropout)  # fmt: skip
    return nn.Sequential(*layers)


def mnist_ses_scalar(
    name: str,
    cfg: SESConfig,
    channels=PAPER_CHANNELS,
    hidden=PAPER_HIDDEN,
    num_classes=10,
    dropout=0.7,
    in_size=28,
    **layer_overrides,
) -> nn.Sequential:
    """Every stage: T->H, max projection over scales, ReLU, max-pool, BN2d."""
    pool = 8 if cfg.upsample else 4
    kw = layer_kwargs(cfg, **layer_overrides)
    layers = _front(name, cfg.upsample, in_size)
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        layers += [
            SESConv_Z2_H(c_in, c, bias=True, **kw),
            SESMaxProjection(),
            nn.ReLU(True),
            nn.MaxPool2d(pool, padding=2) if last else nn.MaxPool2d(2),
            nn.BatchNorm2d(c),
        ]
        c_in = c
    return nn.Sequential(*layers, *_head(4 * channels[-1], hidden, num_classes, dropout))


def mnist_ses_vector(
    name: str,
    cfg: SESConfig,
    channels=PAPER_CHANNELS,
    hidden=PAPER_HIDDEN,
    num_classes=10,
    dropout=0.7,
    in_size=28,
    **layer_overrides,
) -> nn.Sequential:
    """Stage 1 T->H, stages 2-3 H->H (scale_size 1), each followed by ReLU, scale-wise
    max-pool and scale BN; max projection over scales before the head."""
    pool = 8 if cfg.upsample else 4
    kw = layer_kwargs(cfg, **layer_overrides)
    layers = _front(name, cfg.upsample, in_size)
    c_in = 1
    for i, c in enumerate(channels):
        last = i == len(channels) - 1
        conv = SESConv_Z2_H(c_in, c, bias=True, **kw) if i == 0 else SESConv_H_H(c_in, c, 1, bias=True, **kw)
        layers += [
            conv,
            nn.ReLU(True),
            ScaleMaxPool2d(pool, padding=2) if last else ScaleMaxPool2d(2),
            ScaleBatchNorm(c),
        ]
        c_in = c
    return nn.Sequential(*layers, SESMaxProjection(), *_head(4 * channels[-1], hidden, num_classes, dropout))


def _column(name: str) -> str:
    size = "56" if "_56" in name else "28"
    return f"{size}x{size}" + (" +" if name.endswith("p") else "")


def _reproduce(name: str) -> str:
    return f"sesn reproduce --profile paper --models {name}"


def _columns(name: str) -> tuple[str, ...]:
    """The reproduce table's column keys a model fills: the CNN serves both columns of its
    input size (without and with augmentation), a SESN model the one its name says."""
    size = "56" if "_56" in name else "28"
    if "_cnn_" in name:
        return (size, size + "+")
    return (size + ("+" if name.endswith("p") else ""),)


def _register_cnn(name: str, upsample: bool) -> None:
    register(
        name,
        mnist_cnn,
        name,
        upsample,
        metadata=dict(
            dataset="mnist-scale",
            input_shape=(1, 28, 28),
            num_params=MNIST_PARAMS,
            column=f"{'56x56' if upsample else '28x28'} and {'56x56' if upsample else '28x28'} +",
            row="CNN",
            reproduce=_reproduce(name),
            family="cnn",
            note="the paper's table has a CNN row; its numbers are not reproduced here (docs/models.md)",
            reproduce_columns=_columns(name),
            profiles=("paper",) if upsample else ("paper", "quick"),
        ),
    )


OPTIMISED_PREFIX = {"D": "_disco_", "R": "_sesr_", "W": "_sesw_"}  # model name infix of each optimised basis


def _register_ses(name: str, optimised: str | None = None) -> None:
    """A paper SESN model; ``optimised="D"`` (``"R"``, ``"W"``) registers the same model with
    that optimised basis (sesn.basis.optimized, sesn.basis.whitened) as ``mnist_disco_*``
    (``mnist_sesr_*``, ``mnist_sesw_*``), asked for by name in ``sesn reproduce``, not in a
    profile's default sweep."""
    cfg = MNIST_SES_CONFIGS[name]
    if optimised:
        cfg = dataclasses.replace(cfg, name=name.replace("_ses_", OPTIMISED_PREFIX[optimised]), basis_type=optimised)
    kind = "scalar" if "scalar" in name else "vector"
    factory = mnist_ses_scalar if kind == "scalar" else mnist_ses_vector
    meta = dict(
        row=f"SESN {kind}",
        published=PUBLISHED[name],
        published_source="paper, Table 2 (docs/models.md)",
        family=f"ses_{kind}",
    )
    meta["profiles"] = ("paper", "quick") if "_28" in name else ("paper",)
    if optimised:
        meta = dict(
            row=f"SESN {kind} (basis {optimised})",
            family=f"{OPTIMISED_PREFIX[optimised].strip('_')}_{kind}",
            note=f"{name} with basis_type={optimised!r} (scales, kernel, effective size unchanged)",
        )
    meta.update(
        dataset="mnist-scale",
        basis=cfg.basis_type,
        input_shape=(1, 28, 28),
        num_params=MNIST_PARAMS,
        column=_column(name),
        reproduce=_reproduce(cfg.name),
    )
    register(cfg.name, factory, cfg.name, cfg, metadata=dict(meta, reproduce_columns=_columns(name)))


_register_cnn("mnist_cnn_28", upsample=False)
_register_cnn("mnist_cnn_56", upsample=True)
for _name in MNIST_SES_CONFIGS:
    _register_ses(_name)
    _register_ses(_name, optimised="D")
    _register_ses(_name, optimised="R")
    _register_ses(_name, optimised="W")
