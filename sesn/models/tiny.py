"""Tiny registered test models (timm's trick): the paper's structures with a few
channels, so CI exercises every code path in seconds."""

from __future__ import annotations

from sesn.models.mnist import mnist_cnn, mnist_ses_scalar, mnist_ses_vector
from sesn.models.mnist_configs import SESConfig
from sesn.models.registry import register_model
from sesn.models.wrn import WideResNet

TINY_CHANNELS = (4, 6, 8)
TINY_HIDDEN = 16
TINY_SES = SESConfig("test_ses", num_scales=3, factor=2.0, min_scale=1.5, mult=1.4, kernel_size=11, effective_size=7)
TINY_SES_56 = SESConfig("test_ses_56", num_scales=3, factor=2.0, min_scale=1.5, mult=1.4, kernel_size=11, effective_size=7)


def _reg(name, build, dataset, shape, params, family):
    register_model(name, dataset=dataset, input_shape=shape, num_params=params, family=family, note="tiny test model")(build)


_reg("test_cnn", lambda **kw: mnist_cnn("test_cnn", False, **{"channels": TINY_CHANNELS, "hidden": TINY_HIDDEN, **kw}), "mnist-scale", (1, 28, 28), 4_492, "cnn")
_reg("test_ses_scalar", lambda **kw: mnist_ses_scalar("test_ses_scalar", TINY_SES, **{"channels": TINY_CHANNELS, "hidden": TINY_HIDDEN, **kw}), "mnist-scale", (1, 28, 28), 4_492, "ses_scalar")
_reg("test_ses_vector", lambda **kw: mnist_ses_vector("test_ses_vector", TINY_SES, **{"channels": TINY_CHANNELS, "hidden": TINY_HIDDEN, **kw}), "mnist-scale", (1, 28, 28), 4_492, "ses_vector")
_reg("test_ses_scalar_56", lambda **kw: mnist_ses_scalar("test_ses_scalar_56", TINY_SES_56, **{"channels": TINY_CHANNELS, "hidden": TINY_HIDDEN, **kw}), "mnist-scale", (1, 28, 28), 4_492, "ses_scalar")
_reg("test_wrn", lambda **kw: WideResNet(**{"depth": 10, "widths": (4, 8, 12, 16), "in_size": 32, "name": "test_wrn", **kw}), "stl10", (3, 32, 32),  7_806, "wrn")
for _v in "abc":
    _reg(
        f"test_wrn_ses_{_v}",
        (lambda v: lambda **kw: WideResNet(**{"depth": 10, "widths": (4, 8, 12, 16), "in_size": 32, "variant": v, "scales": [0.9, 1.27, 1.79], "name": f"test_wrn_ses_{v}", **kw}))(_v),
        "stl10",
        (3, 32, 32),
        8_094 if _v == "c" else 7_806,
        "wrn_ses",
    )
