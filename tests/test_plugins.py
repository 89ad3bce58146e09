"""A tiny external package (tests/plugin_example/sesn_example_plugin.py) joins every output
without editing sesn: both reports, the benchmarks, sesn reproduce, the generalization
benchmark and the property tests (with tolerances measured for its layer). Each command
runs in a fresh process, as a user would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "tests" / "plugin_example"
DIGITS = REPO / "tests" / "data" / "mnist"


def _run(args, tmp_path, env_extra=None, timeout=600):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(PLUGIN_DIR), str(REPO)]), OMP_NUM_THREADS="2")
    env.pop("SESN_IMPORT", None)
    env.update(env_extra or {})
    res = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=timeout)
    return res


def _sesn(args, tmp_path, **kw):
    return _run(["-m", "sesn.cli", "--import", "sesn_example_plugin", *args], tmp_path, **kw)


@pytest.mark.slow
def test_plugin_in_both_reports(tmp_path):
    res = _sesn(
        [
            "report",
            "methods",
            "--out",
            str(tmp_path / "m"),
            "--depth",
            "1",
            "--size",
            "40",
            "--batch",
            "1",
            "--channels",
            "2",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "example blur-conv" in set(pd.read_csv(tmp_path / "m" / "methods_depth.csv").method)
    assert "example blur-conv: Gaussian blur" in (tmp_path / "m" / "methods.md").read_text()
    res = _sesn(
        [
            "report",
            "equivariance",
            "--out",
            str(tmp_path / "e"),
            "--configs",
            "mnist_ses_vector_28",
            "--size",
            "40",
            "--batch",
            "1",
            "--channels",
            "2",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "example blur-conv" in set(pd.read_csv(tmp_path / "e" / "equivariance_methods.csv").method)


def test_unknown_plugin_is_a_clear_error(tmp_path):
    res = _run(["-m", "sesn.cli", "--import", "no_such_plugin", "report", "methods"], tmp_path)
    assert res.returncode == 2 and "plug-in 'no_such_plugin' cannot be imported" in res.stderr


@pytest.mark.slow
def test_plugin_in_the_benchmarks(tmp_path):
    res = _run(
        [
            "-m",
            "pytest",
            str(REPO / "bench"),
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "plugin or method_layer",
            "--benchmark-json",
            str(tmp_path / "b.json"),
        ],
        tmp_path,
        {"SESN_IMPORT": "sesn_example_plugin", "SESN_BENCH_QUICK": "1"},
    )
    assert res.returncode == 0, res.stdout[-2000:]
    names = {b["name"] for b in json.loads((tmp_path / "b.json").read_text())["benchmarks"]}
    assert {"method/example blur-conv", "example_net_28/plugin"} <= names


@pytest.mark.slow
@pytest.mark.skipif(not DIGITS.is_dir(), reason="real MNIST digits (tests/data/mnist) not available")
def test_plugin_in_reproduce_and_generalization(tmp_path):
    res = _sesn(
        ["reproduce", "--profile", "smoke", "--results", str(tmp_path / "r"), "--models", "example_net_28"], tmp_path
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| Example net |" in (tmp_path / "r" / "table.md").read_text()
    from sesn.data import stir
    from sesn.data.npz import npz_bytes
    from sesn.data.sources import load_digits

    (tmp_path / "s.npz").write_bytes(npz_bytes(stir.build_mnist(load_digits("mnist"), seed=42, instances=1)))
    res = _sesn(
        [
            "generalization",
            "--profile",
            "smoke",
            "--data",
            str(tmp_path / "s.npz"),
            "--results",
            str(tmp_path / "g"),
            "--models",
            "stir_example_blur_conv",
            "stir_cnn",
            "--quiet",
        ],
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| example blur-conv |" in (tmp_path / "g" / "table.md").read_text()


@pytest.mark.slow
def test_plugin_layer_in_the_property_tests_of_the_pytest_plugin(tmp_path):
    """``pytest --sesn-import MODULE`` collects the plug-in's case (the package's pytest11 plug-in):
    the example lift passes the reference verdict, its broken copy (scale axis reversed) fails
    naming the scale pair; the regression level reads the self-measured tolerances only when a
    case claims it, and without them fails with the command that measures them."""
    env = {"SESN_HYPOTHESIS_PROFILE": "ci"}
    args = ["-m", "pytest", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-o", "addopts=",
            "--sesn-import", "sesn_example_plugin", "--sesn-examples", "3", str(tmp_path)]  # fmt: skip
    res = _run(args + ["-k", "th"], tmp_path, env)
    assert res.returncode == 0 and "1 passed" in res.stdout, res.stdout[-3000:]
    assert "p0: example lift (T->H, level reference:2)" in res.stdout
    res = _run(args, tmp_path, {**env, "SESN_EXAMPLE_BROKEN": "1"})
    assert res.returncode == 1 and "1 failed, 1 passed" in res.stdout, res.stdout[-3000:]
    assert "FAILS at step 1, scale pair (" in res.stdout and "x the worst reference" in res.stdout
    # -k hh selects no T->H case
    res = _run(args + ["-k", "hh"], tmp_path, env)
    assert res.returncode == 5 and "deselected" in res.stdout, res.stdout[-2000:]
    # the regression level: without a tolerance file, the command that measures one
    regression = {**env, "SESN_EXAMPLE_REGRESSION": "1", "SESN_PLUGIN_TOLERANCES": str(tmp_path / "tol.csv")}
    res = _run(args, tmp_path, regression)
    assert res.returncode == 1 and "python -m sesn.testing.plugins measure" in res.stdout, res.stdout[-3000:]
    res = _run(["-m", "sesn.testing.plugins", "measure", "--import", "sesn_example_plugin", "--out",
                str(tmp_path / "tol.csv"), "--draws", "3"], tmp_path, regression)  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    tol = pd.read_csv(tmp_path / "tol.csv")
    assert "example lift (regression)" in set(tol.case) and (tol.tolerance < tol.plain_min).all()
    res = _run(args, tmp_path, regression)
    assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout[-3000:]


def test_entry_points_and_env_are_loaded_once(monkeypatch):
    """A plug-in installed as a package is found through its 'sesn.plugins' entry point."""
    import importlib.metadata

    from sesn import plugin_loader as plugins

    class FakeEntryPoint:
        name, value = "example", "sesn_example_plugin"

        def __init__(self):
            self.loads = 0

        def load(self):
            self.loads += 1
            return object()

    ep = FakeEntryPoint()
    monkeypatch.setattr(
        importlib.metadata, "entry_points", lambda group: [ep] if group == plugins.ENTRY_POINT_GROUP else []
    )
    monkeypatch.setattr(plugins, "_loaded", [])
    monkeypatch.setenv("SESN_IMPORT", "json, os")
    loaded = plugins.load_plugins(["math"])
    assert loaded == ["math", "json", "os", "entry point example = sesn_example_plugin"] and ep.loads == 1
    plugins.load_plugins(["math"])
    assert ep.loads == 1  # not twice
    assert plugins.pop_import_options(["--import", "a", "report", "--import=b,c", "methods"]) == (
        ["a", "b,c"],
        ["report", "methods"],
    )
    with pytest.raises(ValueError, match="--import needs a module name"):
        plugins.pop_import_options(["report", "--import"])
