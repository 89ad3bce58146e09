"""One table of tolerances for the property tests.

Exact properties are keyed by dtype: relative squared error ``||a - b||^2 / ||a||^2`` of
integer translations and scale-axis shifts of scale-pointwise layers. The bound is stated
on the relative (not squared) error: float64 <= 1e-10, float32 <= 1e-5, so the squared
bounds are 1e-20 / 1e-10.

Approximate properties (rescaling on the pixel grid) have one tolerance **per
configuration**, layer kind, scale step and dtype, measured on that configuration alone:
``rescale_tolerances.csv``, written by ``python -m equivariance_tests.measure_tolerances``
(12 draws of weights and inputs per row, 4 of them at the canvas corner; tolerance = 3 x the
largest Delta over the draws; ``python -m equivariance_tests.margin`` checks that rule on fresh
draws),
for the overall Delta and for each compared scale pair separately (a configuration's
large Delta usually comes from one badly rounded window pair; the others keep tight bounds).
Each row also holds the plain conv's Delta on the same draws; a row whose tolerance is not
below it is *indistinguishable* from a plain conv and is xfailed, not drawn.

Every rescaling case also asserts that the row's tolerance is below the plain conv's Delta on
the case's own input, measured in the test: a bound that does not come from the layer under
test, so a table measured on a broken layer (or grown loose) fails. And it asserts
``Delta_layer <= Delta_plain_conv / R`` on the same input and step, with R per
(kind, basis) family below: half the smallest plain/SES ratio measured over the family's
distinguishable rows, rounded down (see ``measure_tolerances.family_ratio``). It does not
depend on the tolerance table being right, so a table regenerated from a broken layer is
still caught.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
from pathlib import Path

import torch

from sesn.basis.registry import measured_bases
from sesn.testing.tolerance import SAFETY  # noqa: F401  (re-exported: the rule of every table)

EXACT_RELATIVE = {torch.float64: 1e-10, torch.float32: 1e-5}
EXACT = {dtype: tol**2 for dtype, tol in EXACT_RELATIVE.items()}

TOLERANCE_CSV = Path(__file__).with_name("rescale_tolerances.csv")

DTYPE_NAMES = {torch.float64: "float64", torch.float32: "float32"}


@dataclasses.dataclass(frozen=True)
class RescaleRow:
    """One measured row of ``rescale_tolerances.csv``."""

    source: str  # "grid" (strategy space) or "paper" (a paper model's scales)
    config: str
    basis: str
    kind: str
    step: int
    dtype: str
    pair: str  # "all" (overall Delta) or "i-j"
    draws: int
    delta_median: float
    delta_max: float
    tolerance: float
    plain_min: float
    plain_median: float
    ratio_min: float
    distinguishable: bool
    corner_draws: int  # of the draws, at the canvas corner (measure_tolerances.draw_parameters)


def load_rescale_table(path: Path = TOLERANCE_CSV) -> tuple[dict, dict]:
    """``({(config, kind, step, dtype): overall RescaleRow}, {(config, kind, step, dtype, pair): pair RescaleRow})``."""
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run `python -m equivariance_tests.measure_tolerances` to measure it"
        )
    overall, pairs = {}, {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            num = {
                k: float(r[k]) if r[k] != "" else float("nan")
                for k in ("delta_median", "delta_max", "tolerance", "plain_min", "plain_median", "ratio_min")
            }
            row = RescaleRow(
                r["source"],
                r["config"],
                r["basis"],
                r["kind"],
                int(r["step"]),
                r["dtype"],
                r["pair"],
                int(r["draws"]),
                num["delta_median"],
                num["delta_max"],
                num["tolerance"],
                num["plain_min"],
                num["plain_median"],
                num["ratio_min"],
                r["distinguishable"] == "True",
                int(r["corner_draws"]),
            )
            if row.pair == "all":
                overall[(row.config, row.kind, row.step, row.dtype)] = row
            else:
                pairs[(row.config, row.kind, row.step, row.dtype, row.pair)] = row
    return overall, pairs


RESCALE, RESCALE_PAIRS = load_rescale_table()


def _index_pairs(pairs: dict) -> dict:
    out: dict = {}
    for (c, k, t, d, pair), row in pairs.items():
        i, j = map(int, pair.split("-"))
        out.setdefault((c, k, t, d), {})[(i, j)] = row.tolerance
    return out


_PAIRS_BY_CASE = _index_pairs(RESCALE_PAIRS)


def pair_tolerances(config: str, kind: str, step: int, dtype: str) -> dict[tuple[int, int], float]:
    """``{(i, j): tolerance}`` of every compared scale pair of a case (KeyError if unmeasured)."""
    key = (config, kind, step, dtype)
    if key not in _PAIRS_BY_CASE:
        raise KeyError(f"no measured pair tolerances for {key}; re-run python -m equivariance_tests.measure_tolerances")
    return dict(_PAIRS_BY_CASE[key])


@functools.lru_cache(maxsize=None)
def rescale_cases(kind: str, source: str, distinguishable: bool = True, bases: str = "AB") -> list[tuple[str, int]]:
    """Sorted ``(config, step)`` pairs of a kind, source and basis types whose rows (both dtypes)
    are distinguishable from a plain conv (or, with ``distinguishable=False``, where one is not)."""
    keys = {(r.config, r.step) for r in RESCALE.values() if r.kind == kind and r.source == source and r.basis in bases}
    ok = {
        (c, t)
        for c, t in keys
        if all((c, kind, t, d) in RESCALE and RESCALE[(c, kind, t, d)].distinguishable for d in DTYPE_NAMES.values())
    }
    return sorted(ok if distinguishable else keys - ok)


MUTANT_CSV = Path(__file__).with_name("mutant_deltas.csv")


@functools.lru_cache(maxsize=None)
def mutant_cases(mutant: str, kind: str, source: str, margin: float = 2.0) -> list[tuple[str, int]]:
    """Drawn ``(config, step)`` cases where ``mutant``'s measured Delta (smallest over its
    draws, ``mutant_deltas.csv``) is above ``margin`` x the case's tolerance: the cases on
    which a test of the tester can demand a rejection on any draw."""
    ok = set(rescale_cases(kind, source, bases=measured_bases()))
    out = []
    with open(MUTANT_CSV, newline="") as f:
        for r in csv.DictReader(f):
            case = (r["config"], int(r["step"]))
            if r["mutant"] == mutant and r["kind"] == kind and r["source"] == source and case in ok:
                if float(r["delta_min"]) > margin * float(r["tolerance"]):
                    out.append(case)
    return sorted(out)


# Delta_layer <= Delta_plain_conv / R, per (kind, basis), measured (measure_tolerances prints it).
MIN_ADVANTAGE_OVER_CONV = {
    ("hh", "A"): 3.2,
    ("hh", "B"): 2.0,
    ("hh", "D"): 51.9,
    ("hh", "R"): 54.4,
    ("hh_interscale", "A"): 3.5,
    ("hh_interscale", "B"): 3.0,
    ("hh_interscale", "D"): 57.5,
    ("hh_interscale", "R"): 86.1,
    ("th", "A"): 4.2,
    ("th", "B"): 2.7,
    ("th", "D"): 70.8,
    ("th", "R"): 68.0,
}
