"""The plug-in test API is part of the installed package: build the wheel, install it into a
fresh folder, and from outside the repository register a user's layers as equivariance cases,
measure tolerances, and run the pytest plug-in (``pytest --sesn-import MODULE``) on four of
them: a correct basis A lift and a DSS-like layer pass; a 10 % sigma error at odd scales and
one at the largest scale fail, naming the scale pair and the ratio to the reference
(``equivariance_tests`` is not installed and not needed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

USER_MODULE = """
from sesn.nn import SESConv_Z2_H
from sesn.testing.plugins import register_equivariance_case

SCALES = [1.0, 1.41, 2.0]
register_equivariance_case(
    "user lift", build=lambda: SESConv_Z2_H(1, 4, kernel_size=9, effective_size=3, scales=SCALES, padding=4),
    kind="T->H", scales=SCALES, in_channels=1, out_channels=4, kernel_size=9, size=40, effective_size=3,
)
"""

CHECK = """
import importlib.util, sys
import sesn
assert sesn.__file__.startswith(sys.argv[1]), sesn.__file__
assert importlib.util.find_spec("equivariance_tests") is None
from sesn.testing.plugins import CASES, measure_tolerances
import user_layers
rows = measure_tolerances(CASES["user lift"], draws=2)
assert [r["step"] for r in rows] == [1, 2] and all(r["tolerance"] < r["plain_min"] for r in rows), rows
print("ok")
"""


@pytest.mark.slow
def test_installed_wheel_registers_a_plugin_case_from_outside_the_repository(tmp_path):
    run = dict(capture_output=True, text=True, timeout=600)
    src, wheels, site, user = (tmp_path / d for d in ("src", "wheels", "site", "user"))
    user.mkdir()
    # build from a copy of what the wheel packs: setuptools writes build/ next to the sources
    shutil.copytree(REPO / "sesn", src / "sesn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(wheels), str(src)], **run)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (wheel,) = wheels.glob("sesn-*.whl")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q",
                          "--target", str(site), str(wheel)], **run)  # fmt: skip
    assert res.returncode == 0, res.stderr
    (user / "user_layers.py").write_text(USER_MODULE)
    env = {**os.environ, "PYTHONPATH": f"{site}{os.pathsep}{user}"}
    res = subprocess.run([sys.executable, "-c", CHECK, str(site)], cwd=user, env=env, **run)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr
    res = subprocess.run([sys.executable, "-m", "sesn.testing.plugins", "measure", "--import", "user_layers",
                          "--out", "tol.csv", "--draws", "2"], cwd=user, env=env, **run)  # fmt: skip
    assert res.returncode == 0 and (user / "tol.csv").read_text().startswith("case,kind,step"), res.stdout + res.stderr
    # the pytest plug-in of the wheel (entry point pytest11), on the user's four layers
    shutil.copy(REPO / "tests" / "plugin_example" / "sesn_user_layers.py", user / "sesn_user_layers.py")
    env4 = {**env, "SESN_USER_LAYERS": "correct,odd_sigma,top_sigma,dss", "SESN_CACHE": str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "pytest", "--sesn-import", "sesn_user_layers", "--sesn-examples", "3",
                          "-p", "no:cacheprovider", "-rf", "--trace-config"], cwd=user, env=env4, **run)  # fmt: skip
    out = res.stdout
    assert res.returncode == 1 and "2 failed, 2 passed" in out, out[-4000:] + res.stderr[-2000:]
    assert str(site / "sesn" / "testing" / "pytest_plugin.py") in out  # the wheel's plug-in, not the checkout's
    for i, name in enumerate(["user lift", "user lift, odd scales' sigma 10% small",
                              "user lift, largest sigma 10% small", "user DSS-like layer"]):  # fmt: skip
        assert f"p{i}: {name} (" in out, out[:3000]
    assert "FAILED sesn::test_th_plugin_verdict[p1]" in out and "FAILED sesn::test_th_plugin_verdict[p2]" in out
    top = out[out.index("sesn verdict failed for case 'user lift, largest sigma 10% small'") :]
    assert "FAILS at step 1, scale pair (2, 3): Delta" in top and "x the worst reference (SESN basis" in top, top[:3000]
    odd = out[out.index('sesn verdict failed for case "user lift, odd scales\' sigma 10% small"') :]
    assert "FAILS at step 1, scale pair (" in odd and "allowed 2 x" in odd, odd[:3000]
