"""Tiny registered test models (timm's trick): the paper's structures with a few
channels, so CI exercises every code path in seconds."""

from __future__ import annotations

from sesn.models.mnist import mnist_cnn, mnist_ses_scalar, mnist_ses_vector
from sesn.models.mnist_configs import SESConfig
from sesn.models.registry import register
from sesn.models.wrn import WideResNet

TINY_CHANNELS = (4, 6, 8)
TINY_HIDDEN = 16
TINY_SES = SESConfig("test_ses", num_scales=3, factor=2.0, min_scale=1.5, mult=1.4, kernel_size=11, effective_size=7)
TINY_SES_56 = SESConfig(
    "test_ses_56", num_scales=3, factor=2.0, min_scale=1.5, mult=1.4, kernel_size=11, effective_size=7
)


TINY = dict(channels=TINY_CHANNELS, hidden=TINY_HIDDEN)
TINY_WRN = dict(depth=10, widths=(4, 8, 12, 16), in_size=32)


def _reg(name, factory, /, *args, dataset, shape, params, family, row=None, **kwargs):
    placement = dict(row=row, reproduce_columns=("28", "28+"), profiles=("smoke",)) if row else {}
    meta = dict(
        dataset=dataset, input_shape=shape, num_params=params, family=family, note="tiny test model", **placement
    )
    register(name, factory, *args, metadata=meta, **kwargs)


MNIST = dict(dataset="mnist-scale", shape=(1, 28, 28), params=4_492)
_reg("test_cnn", mnist_cnn, "test_cnn", False, **MNIST, family="cnn", row="CNN", **TINY)
_reg(
    "test_ses_scalar",
    mnist_ses_scalar,
    "test_ses_scalar",
    TINY_SES,
    **MNIST,
    family="ses_scalar",
    row="SESN scalar",
    **TINY,
)
_reg(
    "test_ses_vector",
    mnist_ses_vector,
    "test_ses_vector",
    TINY_SES,
    **MNIST,
    family="ses_vector",
    row="SESN vector",
    **TINY,
)
_reg("test_ses_scalar_56", mnist_ses_scalar, "test_ses_scalar_56", TINY_SES_56, **MNIST, family="ses_scalar", **TINY)
STL = dict(dataset="stl10", shape=(3, 32, 32))
_reg("test_wrn", WideResNet, **STL, params=7_806, family="wrn", name="test_wrn", **TINY_WRN)
for _v in "abc":
    _reg(
        f"test_wrn_ses_{_v}",
        WideResNet,
        **STL,
        params=8_094 if _v == "c" else 7_806,
        family="wrn_ses",
        variant=_v,
        scales=[0.9, 1.27, 1.79],
        name=f"test_wrn_ses_{_v}",
        **TINY_WRN,
    )
