"""The pytest plug-in of the package (sesn.testing.pytest_plugin, entry point pytest11): inactive
unless asked; --sesn-import or the ini option collects the registered cases as one test each,
named by kind so -k selects; a module without cases, one that does not import, or an unknown
level is a usage error naming it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN_DIR = Path(__file__).resolve().parent / "plugin_example"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("sesn-cache")  # shared: the optimised bases are solved once


@pytest.fixture
def run(pytester, monkeypatch, cache):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.delenv("SESN_IMPORT", raising=False)
    monkeypatch.setenv("SESN_CACHE", str(cache))

    def go(*args):
        return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)

    return go


def test_inactive_unless_asked(run, pytester):
    pytester.makepyfile(test_x="def test_one():\n    pass\n")
    res = run("-v")
    res.assert_outcomes(passed=1)
    assert "sesn:" not in res.stdout.str()


def test_collects_registered_cases_by_kind(run, pytester):
    pytester.makepyfile(test_x="def test_one():\n    pass\n")
    res = run("--sesn-import", "sesn_example_plugin", "--sesn-examples", "2", "-v")
    res.assert_outcomes(passed=2)
    out = res.stdout.str()
    assert "sesn::test_th_plugin_verdict[p0] PASSED" in out and "p0: example lift (T->H, level reference:2)" in out
    res = run("--sesn-import", "sesn_example_plugin", "--sesn-examples", "2", "-k", "hh")
    res.assert_outcomes(passed=0, deselected=2)


def test_ini_option_and_level_override(run, pytester):
    pytester.makeini("[pytest]\nsesn_import = sesn_example_plugin\nsesn_examples = 2\n")
    res = run("--sesn-level", "reference:best", "-v")
    res.assert_outcomes(failed=1)  # basis A is not within 2x of the optimised bases
    assert "level reference:best:2" in res.stdout.str() and "x the best reference" in res.stdout.str()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--sesn-import", "no_such_module_xyz"], "plug-in 'no_such_module_xyz' cannot be imported"),
        (["--sesn-import", "os"], "no equivariance cases registered"),
        (["--sesn-import", "sesn_example_plugin", "--sesn-level", "bogus"], "unknown verdict level 'bogus'"),
        (["--sesn-import", "sesn_example_plugin", "--sesn-examples", "0"], "--sesn-examples must be >= 1"),
    ],
)
def test_bad_input_is_a_usage_error(run, args, message):
    res = run(*args)
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert message in res.stderr.str() + res.stdout.str()
