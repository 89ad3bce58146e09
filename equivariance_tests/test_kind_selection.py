"""`pytest equivariance_tests -k <kind>` selects exactly the tests of that kind."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def _collect(expr: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(HERE), "-k", expr, "--collect-only", "-q", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        cwd=HERE.parent,
        check=True,
    ).stdout
    return [line.split("::")[-1] for line in out.splitlines() if "::" in line]


@pytest.mark.parametrize("kind", ["th", "hh", "proj"], ids=["T2H", "H2H", "P"])
def test_tester_kind_selection(kind):
    names = _collect(kind)
    assert names, f"-k {kind} selected nothing"
    pattern = re.compile(rf"^test_{kind}(_|$)" if kind != "hh" else r"^test_hh(_interscale)?_")
    wrong = [n for n in names if not pattern.match(n)]
    assert not wrong, f"-k {kind} also selected {wrong}"
