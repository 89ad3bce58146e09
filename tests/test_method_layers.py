"""The layer contract (sesn.nn.base.ScaleEquivariantModule) and the catalogue of per-method
layers (sesn.models.method_layers) that both reports build from."""

from __future__ import annotations

import inspect
import types

import pytest
import torch
from torch import nn

import sesn.baselines.dss
import sesn.baselines.sevf
import sesn.baselines.si_convnet
import sesn.baselines.sicnn
import sesn.baselines.ss_cnn
import sesn.nn
from sesn.models import MNIST_SES_CONFIGS
from sesn.models import method_layers as ml
from sesn.nn.base import ScaleEquivariantModule

LAYER_MODULES = [
    sesn.nn,
    sesn.baselines.dss,
    sesn.baselines.sevf,
    sesn.baselines.si_convnet,
    sesn.baselines.sicnn,
    sesn.baselines.ss_cnn,
]


def _layer_classes():
    out = {}
    for mod in LAYER_MODULES:
        for name, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__.startswith("sesn."):
                out[f"{obj.__module__}.{name}"] = obj
    return out


def test_every_layer_of_sesn_nn_and_the_baselines_derives_from_the_contract():
    classes = _layer_classes()
    assert len(classes) >= 18
    outside = [name for name, cls in classes.items() if not issubclass(cls, ScaleEquivariantModule)]
    assert outside == []


def test_the_contract_is_checked_when_the_class_is_made():
    with pytest.raises(TypeError, match="input_kind"):

        class NoKind(ScaleEquivariantModule):
            def evaluate_output_shape(self, s):
                return s

    with pytest.raises(TypeError, match="_forward_<mode>"):

        class MissingMode(ScaleEquivariantModule):
            input_kind, output_kind = "T", "T"
            compute_modes = ("auto", "fast", "slow")

            def _forward_fast(self, x):
                return x

            def evaluate_output_shape(self, s):
                return s

    class NoShape(ScaleEquivariantModule):
        input_kind, output_kind = "T", "H"

    with pytest.raises(TypeError, match="evaluate_output_shape"):
        NoShape()


def _check_shapes(model: nn.Module, x) -> int:
    """Run ``model``; every contract layer's evaluate_output_shape must match its real output."""
    seen = []

    def hook(module, inputs, output):
        inp = inputs[0][0] if isinstance(inputs[0], tuple) else inputs[0]
        out = output[0] if isinstance(output, tuple) else output
        assert tuple(out.shape) == tuple(module.evaluate_output_shape(inp.shape)), type(module).__name__
        assert inp.dim() == (4 if module.input_kind == "T" else 5) and out.dim() == (
            4 if module.output_kind == "T" else 5
        )
        seen.append(type(module).__name__)

    handles = [m.register_forward_hook(hook) for m in ml.layer_modules(model)]
    try:
        y = model(x)
    finally:
        for h in handles:
            h.remove()
    return y, seen


@pytest.mark.parametrize("name", list(ml.METHOD_LAYERS))
def test_catalogue_stacks_map_images_to_images_and_declare_their_shapes(name):
    torch.manual_seed(0)
    entry = ml.METHOD_LAYERS[name]
    x = torch.randn(2, 1, 33, 33, dtype=torch.float64)
    y, seen = _check_shapes(entry.stack(2, 3).double().eval(), x)
    assert y.shape == (2, 3, 33, 33)
    assert seen or name == "CNN"
    single = entry.layer(3)
    assert isinstance(single, nn.Sequential) and single(x.float()).shape == (2, 3, 33, 33)


@pytest.mark.parametrize("basis", ["A", "B", "D"])
def test_ses_stack_is_t_to_h_then_h_to_h_with_the_config_scales(basis):
    cfg = MNIST_SES_CONFIGS["mnist_ses_scalar_28"]
    stack = ml.ses_stack(3, 2, cfg, basis).double()
    kinds = [m.kind for m in ml.layer_modules(stack)]
    assert kinds == ["T->H", "H->H", "H->H"]
    assert all(m.scales == list(cfg.scales) and m.basis_type == basis for m in ml.layer_modules(stack))
    y, seen = _check_shapes(stack, torch.randn(1, 1, 28, 28, dtype=torch.float64))
    assert y.shape == (1, 2, len(cfg.scales), 28, 28) and len(seen) == 3


def test_a_registered_method_joins_the_reports_layer_set():
    from sesn.report.equivariance import baseline_layers
    from sesn.report.methods import t_to_t_stacks

    ml.register_method_layer(
        "blur-then-conv", lambda c_in, c_out, first: nn.Conv2d(c_in, c_out, 5, padding=2), "5x5 conv"
    )
    try:
        with pytest.raises(ValueError, match="already registered"):
            ml.register_method_layer("CNN", lambda *a: None, "")
        assert "blur-then-conv" in baseline_layers(2, 0) and "blur-then-conv" in t_to_t_stacks(2, 2)
        assert "- blur-then-conv: 5x5 conv" in ml.describe()
    finally:
        ml.METHOD_LAYERS.pop("blur-then-conv")


def test_the_reports_build_the_same_layer_for_a_method():
    from sesn.report.equivariance import baseline_layers
    from sesn.report.methods import t_to_t_stacks

    single = baseline_layers(3, 0)
    torch.manual_seed(0)
    stacks = t_to_t_stacks(1, 3)
    assert list(single) == list(stacks)
    for name in single:
        a, b = single[name], stacks[name].double().eval()
        assert [type(m) for m in a.modules()] == [type(m) for m in b.modules()], name
        assert types.SimpleNamespace(**{k: v.shape for k, v in a.state_dict().items()}) == types.SimpleNamespace(
            **{k: v.shape for k, v in b.state_dict().items()}
        )
