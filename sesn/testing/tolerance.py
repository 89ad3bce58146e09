"""The one rule that turns measured equivariance errors into a test tolerance.

A tolerance is SAFETY x the largest error over a case's own draws, rounded up to two
significant digits. Used by the project's tolerance tables (``equivariance_tests``) and by
the plug-in cases (:mod:`sesn.testing.plugins`); ``python -m equivariance_tests.margin``
checks the factor on draws the tables never saw (results/tolerances/margin.md).
"""

from __future__ import annotations

import math
from pathlib import Path

from sesn import settings as sesn_settings

SAFETY = 3.0


def round_up(x: float) -> float:
    """Round up to 2 significant digits (non-finite and non-positive values unchanged)."""
    if not math.isfinite(x) or x <= 0:
        return x
    e = math.floor(math.log10(x)) - 1
    return float(f"{math.ceil(x / 10**e - 1e-9) * 10**e:.2g}")


def tolerance_from(deltas) -> float:
    """SAFETY x the largest of ``deltas``, rounded up."""
    return round_up(SAFETY * max(deltas))


def tolerances_path() -> Path:
    return sesn_settings.plugin_tolerances()


def read_tolerances(path: Path | None = None) -> dict:
    """{(case, step): row} from a tolerance CSV (empty if the file does not exist)."""
    import pandas as pd

    path = tolerances_path() if path is None else Path(path)
    if not path.exists():
        return {}
    table = pd.read_csv(path)
    return {(r.case, int(r.step)): r._asdict() for r in table.itertuples(index=False)}
