"""Per-layer benchmarks: each SES layer (every compute mode) beside its plain-conv
counterpart in one group, forward and forward+backward."""

import pytest
import torch
from cases import LAYER, SES_MODES, layer_case, make_fn
from conftest import run_case
from settings import SETTINGS

KINDS = ["th", "hh1", "hh2", "1x1"]


CASES = [(k, v) for k in KINDS for v in ["plain-conv", *(("auto",) if k == "1x1" else SES_MODES)]]  # 1x1: one path


@pytest.mark.parametrize("backward", [False, True], ids=["fwd", "fwdbwd"])
@pytest.mark.parametrize("kind, variant", CASES)
def test_layer(benchmark, kind, variant, backward):
    mode = None if variant == "plain-conv" else variant
    module, x = layer_case(kind, mode)
    benchmark.group = f"layer-{kind}-{'fwdbwd' if backward else 'fwd'}"
    benchmark.name = f"{kind}/{variant}"
    info = {
        "case": "layer",
        "kind": kind,
        "variant": variant,
        "role": "baseline" if mode is None else "ses",
        "pass": "fwdbwd" if backward else "fwd",
        "batch": x.shape[0],
        "input_shape": list(x.shape),
        "params": sum(p.numel() for p in module.parameters()),
        "layer": {k: v for k, v in LAYER.items()},
    }
    fn = make_fn(module, x, backward)
    run_case(benchmark, fn, rounds=SETTINGS.rounds, info=info, record_auto=variant == "auto" and kind != "1x1")


def _methods():
    from sesn.models.method_layers import METHOD_LAYERS

    return list(METHOD_LAYERS)


@pytest.mark.parametrize("method", _methods())
def test_method_layer(benchmark, method):
    """One layer of every T -> T method of the catalogue (the CNN, the baselines, plug-ins),
    forward, with the layer benchmarks' channels and map size."""
    from sesn.models.method_layers import METHOD_LAYERS

    module = METHOD_LAYERS[method].layer(LAYER["c_out"], in_channels=LAYER["c_in"])
    x = torch.randn(SETTINGS.mnist_batch, LAYER["c_in"], LAYER["size"], LAYER["size"])
    benchmark.group = "layer-methods-fwd"
    benchmark.name = f"method/{method}"
    info = {
        "case": "layer",
        "kind": "method",
        "variant": method,
        "role": "method",
        "pass": "fwd",
        "batch": x.shape[0],
        "input_shape": list(x.shape),
        "params": sum(p.numel() for p in module.parameters()),
    }
    run_case(benchmark, make_fn(module, x, False), rounds=SETTINGS.rounds, info=info)
