"""The plug-in test API is part of the installed package: build the wheel, install it into a
fresh folder, and from outside the repository register a user's layer as an equivariance
case and measure its tolerances (``equivariance_tests`` is not installed and not needed)."""

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
    kind="T->H", scales=SCALES, in_channels=1, out_channels=4, kernel_size=9, size=40,
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
