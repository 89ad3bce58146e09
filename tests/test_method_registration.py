"""Adding a method to every command is one registration (sesn.models.method.register_method):
a toy method registered here reaches the layer catalogue, the methods and equivariance
reports, its profile's default sweep (by tag) and a smoke generalization run, whose record
and table carry its label, and its declared scale ratio; the built-in registrations agree
with the registries they point into."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from sesn import generalization_cli as cli
from sesn.generalization.profiles import PROFILES
from sesn.models import get_model_info
from sesn.models.method import METHODS, Method, method, register_method, stir_model, unregister_method
from sesn.models.method_layers import METHOD_LAYERS, MethodLayer

DIGITS = Path(__file__).resolve().parent / "data" / "mnist"


class ToyConv(nn.Module):
    """A 5 x 5 conv after a 2 x 2 average (stride 1): a 'method' of no particular merit."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 5, padding=2)

    def forward(self, x):
        return self.conv(nn.functional.avg_pool2d(nn.functional.pad(x, (0, 1, 0, 1), mode="replicate"), 2, 1))


def _toy_build(c_in, c_out, first):
    return ToyConv(c_in, c_out)


@pytest.fixture
def toy():
    m = register_method(
        Method(
            "stir_toy",
            "toy method",
            layer=MethodLayer("toy method", _toy_build, "2x2 average, then a 5x5 conv"),
            scale_ratio=1.5,
            tags=("smoke",),
        )
    )
    yield m
    unregister_method("stir_toy")
    assert "stir_toy" not in METHODS and "toy method" not in METHOD_LAYERS


def test_a_registered_method_joins_catalogue_registry_profiles_and_reports(toy):
    from sesn.report.equivariance import baseline_layers, measure_baselines
    from sesn.report.methods import t_to_t_stacks

    assert METHOD_LAYERS["toy method"] is toy.layer
    info = get_model_info("stir_toy")
    assert info.dataset == "stir" and info.row == "toy method" and info.registered_by == __name__
    assert stir_model("stir_toy")(torch.rand(1, 1, 64, 64)).shape == (1, 10)
    assert "stir_toy" in PROFILES["smoke"].models and "stir_toy" not in PROFILES["cpu"].models
    assert isinstance(t_to_t_stacks(2, 3)["toy method"][2], ToyConv)  # the methods report's stacks
    assert isinstance(baseline_layers(3, 0)["toy method"][0], ToyConv)  # the equivariance report's layers
    args = SimpleNamespace(seed=0, batch=1, size=28, blur=2.0, channels=2)
    df, _ = measure_baselines(args)
    toy_rows = df[df.method == "toy method"]
    assert len(toy_rows) == 3 and toy_rows.delta.between(0, 10).all()  # one per step of the MNIST scales
    with pytest.raises(ValueError, match="already registered"):
        register_method(Method("stir_toy", "again", layer=toy.layer))
    with pytest.raises(ValueError, match="another layer named 'toy method'"):
        register_method(Method("stir_toy2", "toy 2", layer=MethodLayer("toy method", _toy_build, "clash")))
    assert "stir_toy2" not in METHODS


@pytest.mark.skipif(not DIGITS.is_dir(), reason="real MNIST digits (tests/data/mnist) not available")
def test_a_registered_method_runs_in_the_smoke_generalization_sweep(toy, tmp_path):
    from tests.test_generalization import _smoke_args, _tiny_set

    tiny = _tiny_set(tmp_path)
    res = tmp_path / "res"
    assert cli.main(_smoke_args(tiny, res)) == 0  # the smoke profile's models, by tag: CNN, DSS and the toy
    records = [json.loads(p.read_text()) for p in sorted(res.glob("runs/**/record.json"))]
    assert sorted(r["model"] for r in records) == ["stir_cnn", "stir_dss", "stir_toy"]
    rec = next(r for r in records if r["model"] == "stir_toy")
    assert rec["method"] == "toy method" and rec["status"] == "done"
    table = pd.read_csv(res / "table.csv").set_index("method")
    assert table.loc["toy method", "scale_ratio"] == 1.5  # declared in the registration
    assert math.isnan(table.loc["toy method", "stir_published"])
    assert table.loc["CNN", "stir_published"] == 63.40  # from the CNN's registration
    assert "| toy method |" in (res / "table.md").read_text()


@pytest.mark.parametrize("m", list(METHODS.values()), ids=list(METHODS))
def test_builtin_registrations_point_at_what_exists(m):
    info = get_model_info(m.model)
    assert info.row == m.label and info.basis == m.basis and info.dataset == "stir"
    assert method(m.model) is m
    for name in m.mnist_models:  # its MNIST-scale models exist and use its basis
        assert get_model_info(name).basis == m.basis, name
    assert set(m.tags) <= set(PROFILES), m.tags
    assert "full" in m.tags  # the full profile trains every built-in method
    assert all(1 <= k <= 4 and len(v) == 2 for k, v in m.published.items())


def test_profiles_select_their_methods_by_tag():
    assert PROFILES["smoke"].models == ("stir_cnn", "stir_dss")
    assert set(PROFILES["reduced"].models) == {"stir_cnn", "stir_sesn_b", "stir_sesn_d", "stir_dss", "stir_pyramid"}
    assert len(PROFILES["cpu"].models) == 16 and len(PROFILES["full"].models) == len(METHODS) == 21
    # STIR's 10 methods carry its published numbers in every scenario
    assert sum(len(m.published) == 4 for m in METHODS.values()) == 10


def test_a_model_registered_directly_joins_a_profile_by_the_same_field():
    """Both sweeps select by ModelInfo.profiles: a stir model registered with the model
    registry alone (no Method) is in the profiles it names, labelled by its row."""
    from sesn.models.registry import _REGISTRY, register
    from sesn.models.stir import STIR_INPUT, stir_method_net

    shape = (1, STIR_INPUT, STIR_INPUT)
    meta = dict(dataset="stir", input_shape=shape, row="direct CNN", profiles=("reduced",))
    register("stir_direct", stir_method_net, "CNN", metadata=meta)
    try:
        assert PROFILES["reduced"].models[-1] == "stir_direct" and "stir_direct" not in PROFILES["smoke"].models
        assert method("stir_direct").label == "direct CNN"
        assert stir_model("stir_direct")(torch.rand(1, 1, 64, 64)).shape == (1, 10)
    finally:
        _REGISTRY.pop("stir_direct")
