"""What the benchmarks run: layer and model cases, sized by :mod:`settings`."""

from __future__ import annotations

import contextlib

import torch
from settings import SETTINGS
from torch import nn

import sesn.models as models
from sesn.nn import SESConv_H_H, SESConv_H_H_1x1, SESConv_Z2_H
from sesn.nn.steerable import SteerableConvBase

# stage 2 of mnist_ses_scalar_28: 32 -> 63 channels on 14x14 maps, kernel 15, 4 scales
LAYER = dict(
    c_in=4 if SETTINGS.quick else 32,
    c_out=5 if SETTINGS.quick else 63,
    size=14,
    kernel_size=15,
    effective_size=7,
    scales=[1.7, 2.45, 3.54, 5.1],
    mult=1.5,
)
SES_MODES = ("naive", "direct", "fft", "separable", "auto")
# every compute mode for the model of issue 13's targets; "naive" and "auto" for the others
ALL_MODES_MODELS = ("mnist_ses_scalar_28",)
MNIST_COLUMNS = {
    "28": ("mnist_cnn_28", ["mnist_ses_scalar_28", "mnist_ses_vector_28"]),
    "56": ("mnist_cnn_56", ["mnist_ses_scalar_56", "mnist_ses_vector_56"]),
}
WRN = (
    ("test_wrn", ["test_wrn_ses_a", "test_wrn_ses_b", "test_wrn_ses_c"])
    if SETTINGS.quick
    else ("wrn_16_8", ["wrn_16_8_ses_a", "wrn_16_8_ses_b", "wrn_16_8_ses_c"])
)

# the scale-generalization benchmark's CNN and SESN models (batch 16 at 64 x 64)
STIR = ("stir_cnn", ["stir_sesn_b"]) if SETTINGS.quick else ("stir_cnn", ["stir_sesn_b", "stir_sesn_a", "stir_sesn_d"])


def has_steerable_layers(name: str) -> bool:
    return any(isinstance(m, SteerableConvBase) for m in models.get_model(name).modules())


# every other registered model of that benchmark (STIR's table, the later families), in the
# same groups as the STIR CNN; the quick mode keeps those without steerable layers (the SESN
# variants' path choice is what makes them slow to set up, and the STIR group has one)
STIR_METHODS = [
    n
    for n in models.list_models("stir_*")
    if n != STIR[0] and n not in STIR[1] and not (SETTINGS.quick and has_steerable_layers(n))
]


def set_mode(module: nn.Module, mode: str) -> nn.Module:
    for m in module.modules():
        if isinstance(m, SteerableConvBase):
            m.compute_mode = mode
    return module


def layer_case(kind: str, mode: str | None):
    """(module, input) of a layer benchmark; ``mode=None`` is the plain-conv counterpart."""
    L = LAYER
    b, s = SETTINGS.mnist_batch, len(L["scales"])
    common = dict(
        kernel_size=L["kernel_size"],
        effective_size=L["effective_size"],
        scales=L["scales"],
        padding=L["kernel_size"] // 2,
        basis_type="B",
        mult=L["mult"],
    )
    if mode is None:
        k = 1 if kind == "1x1" else 7
        module = nn.Conv2d(L["c_in"], L["c_out"], k, padding=k // 2, bias=False)
        x = torch.randn(b, L["c_in"], L["size"], L["size"])
    elif kind == "th":
        module = SESConv_Z2_H(L["c_in"], L["c_out"], compute_mode=mode, **common)
        x = torch.randn(b, L["c_in"], L["size"], L["size"])
    elif kind in ("hh1", "hh2"):
        module = SESConv_H_H(L["c_in"], L["c_out"], int(kind[-1]), compute_mode=mode, **common)
        x = torch.randn(b, L["c_in"], s, L["size"], L["size"])
    else:
        module = SESConv_H_H_1x1(L["c_in"], L["c_out"], bias=False)
        x = torch.randn(b, L["c_in"], s, L["size"], L["size"])
    return module, x


def model_case(name: str, mode: str | None, batch: int):
    model = models.get_model(name)
    if mode is not None:
        set_mode(model, mode)
    info = models.get_model_info(name)
    return model, torch.randn(batch, *info.input_shape), models.count_parameters(model)


def make_fn(module: nn.Module, x: torch.Tensor, backward: bool, precision: str = "fp32", channels_last: bool = False):
    """The timed callable: eval + no_grad forward, or train-mode forward + backward."""
    device = SETTINGS.device
    module = module.to(device)
    x = x.to(device)
    if channels_last and x.dim() == 4:
        module = module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device.type, dtype=torch.float16) if precision == "amp" else contextlib.nullcontext()
    if backward:
        module.train()
        params = [p for p in module.parameters() if p.requires_grad]

        def fn():
            for p in params:
                p.grad = None
            with autocast:
                out = module(x)
            out.float().square().mean().backward()

    else:
        module.eval()

        def fn():
            with torch.no_grad(), autocast:
                return module(x)

    return fn
