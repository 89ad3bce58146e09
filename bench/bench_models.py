"""Per-model benchmarks: each SESN model (naive and auto compute modes) beside the CNN of
the same column in one group; WRN-16-8 beside its SES variants. On CUDA also AMP and
channels_last variants."""

import copy
import time

import pytest
import torch
from cases import (
    ALL_MODES_MODELS,
    MNIST_COLUMNS,
    SES_MODES,
    STIR,
    STIR_METHODS,
    WRN,
    has_steerable_layers,
    make_fn,
    model_case,
)
from conftest import run_case
from settings import SETTINGS

import sesn.models as models
from sesn.nn.recompute import set_memory_saving

PRECISIONS = ["fp32", "amp", "channels_last"] if SETTINGS.cuda else ["fp32"]
# the STIR group: fp32; in the full GPU stage also AMP (its 1-channel 64 px inputs gain little from
# channels_last); in full mode also torch.compile ("compile": nn.Module.compile, fp32; the compile
# time, the first call, is recorded as compile_s)
STIR_PRECISIONS = ["fp32", "amp"] if SETTINGS.cuda and SETTINGS.full else ["fp32"]
STIR_PRECISIONS += ["compile"] if SETTINGS.full else []


def _mnist_cases():
    for column, (cnn, ses) in MNIST_COLUMNS.items():
        yield column, cnn, None
        for name in ses:
            for mode in SES_MODES if name in ALL_MODES_MODELS else ("naive", "auto"):
                yield column, name, mode


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwdbwd"])
@pytest.mark.parametrize("column, name, mode", list(_mnist_cases()), ids=lambda v: str(v))
def test_mnist_model(benchmark, column, name, mode, backward, precision):
    model, x, params = model_case(name, mode, SETTINGS.mnist_batch)
    _run(benchmark, f"mnist-{column}", name, mode, model, x, params, backward, precision, SETTINGS.rounds)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwdbwd"])
@pytest.mark.parametrize("name", [WRN[0], *WRN[1]])
def test_wrn_model(benchmark, name, backward, precision):
    model, x, params = model_case(name, None if name == WRN[0] else "auto", SETTINGS.wrn_batch)
    _run(
        benchmark,
        "wrn",
        name,
        None if name == WRN[0] else "auto",
        model,
        x,
        params,
        backward,
        precision,
        SETTINGS.slow_rounds,
    )


@pytest.mark.parametrize("level", ["layers", "blocks:2", "blocks"])
@pytest.mark.parametrize("name", [WRN[0], *WRN[1]])
def test_wrn_memory_saving(benchmark, name, level):
    """The training step with a memory-saving level (sesn.nn.recompute), beside the plain one
    of the wrn-fwdbwd group: the time that level costs."""
    mode = None if name == WRN[0] else "auto"
    model, x, params = model_case(name, mode, SETTINGS.wrn_batch)
    set_memory_saving(model, level)
    _run(benchmark, "wrn", name, mode, model, x, params, True, "fp32", SETTINGS.slow_rounds, level=level)


@pytest.mark.parametrize("precision", STIR_PRECISIONS)
@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwdbwd"])
@pytest.mark.parametrize("name, mode", [(STIR[0], None)] + [(n, "auto") for n in STIR[1]], ids=str)
def test_stir_model(benchmark, name, mode, backward, precision):
    """The scale-generalization models (STIR protocol, batch 16 at 64 x 64) beside their CNN."""
    model, x, params = model_case(name, mode, SETTINGS.stir_batch)
    _run(benchmark, "stir", name, mode, model, x, params, backward, precision, SETTINGS.rounds)


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwdbwd"])
@pytest.mark.parametrize("name", STIR_METHODS)
def test_stir_method(benchmark, name, backward):
    """Every other method of the scale-generalization benchmark (pixel / slice pool, SI-ConvNet,
    SiCNN, conv3d, Gaussian derivative and foveated networks, ...), fp32, in the STIR CNN's
    groups: a method's row is ``<model>/method`` (``/auto`` where it has steerable layers)."""
    mode = "auto" if has_steerable_layers(name) else None
    model, x, params = model_case(name, mode, SETTINGS.stir_batch)
    _run(benchmark, "stir", name, mode, model, x, params, backward, "fp32", SETTINGS.rounds, method=mode is None)


def _run(benchmark, group, name, mode, model, x, params, backward, precision, rounds, level="off", method=False):
    suffix = "" if precision == "fp32" else f"-{precision}"
    variant = "method" if method else (mode or "baseline")
    benchmark.group = f"{group}-{'fwdbwd' if backward else 'fwd'}{suffix}"
    benchmark.name = f"{name}/{variant}{'' if level == 'off' else '+' + level}{suffix}"
    info = {
        "case": "model",
        "model": name,
        "variant": variant,
        "role": "method" if method else ("baseline" if mode is None else "ses"),
        "pass": "fwdbwd" if backward else "fwd",
        "precision": precision,
        "batch": x.shape[0],
        "input_shape": list(x.shape),
        "params": params,
        "memory_saving": level,
    }
    eager = None
    if precision == "compile":
        eager = make_fn(copy.deepcopy(model), x, backward)  # FLOPs are counted on the eager module
        model.compile()
    fn = make_fn(
        model,
        x,
        backward,
        precision="amp" if precision == "amp" else "fp32",
        channels_last=precision == "channels_last",
    )
    if precision == "compile":
        start = time.perf_counter()
        fn()  # compiles
        if SETTINGS.cuda:
            torch.cuda.synchronize()
        info["compile_s"] = time.perf_counter() - start
    run_case(benchmark, fn, rounds=rounds, info=info, record_auto=mode == "auto" and eager is None, flops_fn=eager)


BASELINE_METHODS = [
    "mnist_kanazawa_28",
    "mnist_xu_28",
    "mnist_sevf_scalar_28",
    "mnist_sevf_vector_28",
    "mnist_dss_scalar_28",
    "mnist_dss_vector_28",
    "mnist_ss_28",
]


@pytest.mark.parametrize("name", BASELINE_METHODS)
def test_mnist_baseline_method(benchmark, name):
    """The other methods of the paper's comparison, forward, in the CNN's mnist-28 group."""
    _forward_only(benchmark, name, "mnist-28-fwd", "method")


def _plugin_models():
    """A plug-in's models but its generalization-benchmark ones (``test_stir_method`` runs
    those in the STIR CNN's groups)."""
    from sesn.models.registry import plugin_models

    return [n for n in plugin_models() if models.get_model_info(n).dataset != "stir"]


@pytest.mark.parametrize("name", _plugin_models())
def test_plugin_model(benchmark, name):
    """Models a plug-in registered ($SESN_IMPORT, entry points): forward, beside the CNN of
    their input size (MNIST-scale 28 px: the mnist-28 group), else in a group of their own."""
    shape = tuple(models.get_model_info(name).input_shape)
    _forward_only(benchmark, name, "mnist-28-fwd" if shape == (1, 28, 28) else "plugin-fwd", "plugin")


def _forward_only(benchmark, name, group, variant):
    """A registered model's eval forward in ``group``, named ``<model>/<variant>``."""
    model, x, params = model_case(name, None, SETTINGS.mnist_batch)
    benchmark.group = group
    benchmark.name = f"{name}/{variant}"
    info = {
        "case": "model",
        "model": name,
        "variant": variant,
        "role": "method",
        "pass": "fwd",
        "precision": "fp32",
        "batch": x.shape[0],
        "input_shape": list(x.shape),
        "params": params,
    }
    run_case(benchmark, make_fn(model, x, False), rounds=SETTINGS.rounds, info=info)
