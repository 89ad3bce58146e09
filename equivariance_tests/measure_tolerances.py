"""Measure the rescaling tolerances, one per configuration, and what each mutant measures.

    python -m equivariance_tests.measure_tolerances [--draws 12] [--corner-draws 4] [--mutant-draws 2] [--jobs 2]

For every configuration the rescaling properties can draw (the full grid of the lists in
:mod:`equivariance_tests.strategies`) and every paper configuration (bases A and B), for
each layer kind (th: T->H; hh: H->H scale_size 1; hh_interscale: H->H scale_size 2) and
each scale step, this measures Delta (:func:`sesn.equivariance.scale_equivariance`) of a
working layer over ``--draws`` random draws of weights, input, image size, blur and input
channels -- the same distribution the tests draw from (``strategies.rescale_case``), the first
``--corner-draws`` of them at the canvas corner (smallest image, widest blur) -- in float64 and
float32, and a plain conv of the same kernel size on the same inputs.

Per (configuration, kind, step, dtype) it writes, to ``rescale_tolerances.csv``, a row for
the overall Delta (``pair`` = "all") and one per compared scale pair ("i-j", the pair's own
Delta: a tail configuration is usually one badly rounded pair, so the other pairs keep tight
bounds):

* ``tolerance`` = SAFETY x the largest Delta over the draws (rounded up to 2 digits);
* ``plain_min``: the plain conv's smallest Delta over the same draws;
* ``ratio_min``: the smallest plain/SES ratio over the draws (same input, same step);
* ``distinguishable``: tolerance < plain_min. Rows where it is not are the configurations
  that cannot be told apart from a plain conv; the tests xfail them strictly instead of
  drawing them.

SAFETY = 3 covers the draw-to-draw spread; ``python -m equivariance_tests.margin`` tests that on
fresh draws the table never saw and writes its numbers to ``results/tolerances/margin.md``.

With ``--mutant-draws M`` > 0 it also measures every mutant of
:mod:`equivariance_tests.mutants` that acts on the rescaling cases on M draws and
writes ``mutant_deltas.csv`` (smallest Delta over the M draws -- the first corner draw and the
first random ones -- vs the float64 tolerance),
from which the kill fractions are printed.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import multiprocessing
import random
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tqdm import tqdm

from equivariance_tests.strategies import (
    BLURS,
    IMAGE_SIZES,
    PAPER_CONFIGS,
    RESCALE_KINDS,
    all_configs,
    paper_config,
    rescale_case,
)
from sesn.basis.registry import measured_bases
from sesn.equivariance import plain_conv_baseline, scale_equivariance
from sesn.testing.tolerance import SAFETY, round_up

HERE = Path(__file__).resolve().parent
TOLERANCE_CSV = HERE / "rescale_tolerances.csv"
MUTANT_CSV = HERE / "mutant_deltas.csv"
CORNER_DRAWS = 4  # of the draws of each row, this many at the canvas corner (draw_parameters)
# mutants that change what a rescaling case measures (the projection mutant does not)
RESCALE_MUTANTS = (
    "no_steering",
    "unscaled_crop",
    "scale_index_off_by_one",
    "reversed_scale_order",
    "per_scale_renormalisation",
    "wrong_sigma",
    "hh_tap_offset",
    "measure_factor_inverted",
    "measure_shift_wrong_direction",
)


def draw_parameters(
    key: str, seed: int, draws: int, corner_draws: int = None, sharp_corner: bool = False
) -> list[dict]:
    """The random draws of one configuration: a function of (key, seed, corner_draws) only, so
    the result does not depend on the order or the number of worker processes.

    The first ``corner_draws`` draws (default CORNER_DRAWS) are at the canvas corner: the
    smallest image with the widest blur (the largest structures against the canvas, where
    rescaling moves most content across the border), each with its own weights and input. For
    the most equivariant layers Delta is set by the canvas, not the layer: it grows by orders
    of magnitude towards that corner and spreads widely over weights and inputs there, so one
    corner draw can sit low in that spread (measured: docs/equivariance-tests.md, "Margin").

    ``sharp_corner`` (basis R's rows): every second corner draw takes the *sharpest* blur
    instead: R's solved scales carry high frequencies that only sharp inputs excite, and its
    largest Delta sits there (measured: docs/equivariance-tests.md, "Basis R has a second
    corner")."""
    if corner_draws is None:
        corner_draws = CORNER_DRAWS
    h = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")
    rng = random.Random(h)
    out = [
        dict(
            cin=rng.randint(1, 3),
            layer_seed=rng.randrange(2**31),
            size=rng.choice(IMAGE_SIZES),
            blur=rng.choice(BLURS),
            input_seed=rng.randrange(2**31),
        )
        for _ in range(draws)
    ]
    for k, d in enumerate(out[:corner_draws]):
        d.update(size=min(IMAGE_SIZES), blur=min(BLURS) if sharp_corner and k % 2 else max(BLURS))
    return out


def measure_config(task) -> tuple[list[dict], list[dict]]:
    source, name, cfg, seed, draws, mutant_draws, corner_draws = task
    from equivariance_tests.mutants import get_mutant

    torch.set_num_threads(1)
    rows, mrows = [], []
    for kind in RESCALE_KINDS:
        params = draw_parameters(f"{name}:{kind}", seed, draws, corner_draws, sharp_corner=cfg.basis_type == "R")
        # mutants: the first corner draw and the first random ones
        mutant_params = (params[:1] + params[corner_draws:])[:mutant_draws] if mutant_draws else []
        steps = range(1, len(cfg.scales))
        d, plain = measure_draws(kind, cfg, params)
        common = dict(source=source, config=name, kernel_size=cfg.kernel_size, effective_size=cfg.effective_size,
                      scales="/".join(f"{s:g}" for s in cfg.scales), basis=cfg.basis_type, mult=cfg.mult,
                      kind=kind)  # fmt: skip
        for (dtype, t), results in d.items():
            pl = np.array(plain[t])
            v = np.array([r.delta for r in results])
            tol = round_up(SAFETY * v.max())
            rows.append(
                dict(
                    **common,
                    step=t,
                    dtype=dtype,
                    pair="all",
                    draws=len(v),
                    corner_draws=min(corner_draws, len(v)),
                    delta_median=float(np.median(v)),
                    delta_max=float(v.max()),
                    tolerance=tol,
                    plain_min=float(pl.min()),
                    plain_median=float(np.median(pl)),
                    ratio_min=float((pl / v).min()),
                    distinguishable=bool(tol < pl.min()),
                )
            )
            for pair in results[0].per_pair:
                pv = np.array([r.per_pair[pair] for r in results])
                rows.append(
                    dict(
                        **common,
                        step=t,
                        dtype=dtype,
                        pair=f"{pair[0]}-{pair[1]}",
                        draws=len(pv),
                        corner_draws=min(corner_draws, len(pv)),
                        delta_median=float(np.median(pv)),
                        delta_max=float(pv.max()),
                        tolerance=round_up(SAFETY * pv.max()),
                        plain_min=math.nan,
                        plain_median=math.nan,
                        ratio_min=math.nan,
                        distinguishable=bool(tol < pl.min()),
                    )
                )
        tols = {(r["step"], r["pair"]): r["tolerance"] for r in rows if r["kind"] == kind and r["dtype"] == "float64"}
        for mname in RESCALE_MUTANTS if mutant_draws else ():
            if mname == "hh_tap_offset" and kind == "th":
                continue
            mp = pytest.MonkeyPatch()
            try:
                get_mutant(mname).apply(mp)
                results = {t: [] for t in steps}
                for p in mutant_params:
                    layer, x = rescale_case(kind, cfg, dtype=torch.float64, **p)
                    for t in steps:
                        results[t].append(scale_equivariance(layer, x, t))
            finally:
                mp.undo()
            for t in steps:
                fails = [case_fails(r, tols, t) for r in results[t]]
                deltas = [r.delta for r in results[t]]
                dmin = math.inf if all(map(math.isnan, deltas)) else float(np.nanmin(deltas))
                mrows.append(
                    dict(
                        source=source,
                        config=name,
                        basis=cfg.basis_type,
                        kind=kind,
                        step=t,
                        mutant=mname,
                        delta_min=dmin,
                        tolerance=tols[(t, "all")],
                        killed=all(fails),
                    )
                )
    return rows, mrows


def measure_draws(kind: str, cfg, params: list[dict]) -> tuple[dict, dict]:
    """For each draw of ``params``: the layer's EquivarianceResult at every scale step in
    float64 and float32, and the plain conv's Delta on the same input (float64). Returns
    ``({(dtype, step): [results]}, {step: [plain Delta]})``."""
    steps = range(1, len(cfg.scales))
    d = {(dt, t): [] for dt in ("float64", "float32") for t in steps}
    plain = {t: [] for t in steps}
    for p in params:
        layer, x = rescale_case(kind, cfg, dtype=torch.float64, **p)
        for t in steps:
            d[("float64", t)].append(scale_equivariance(layer, x, t))
            plain[t].append(
                plain_conv_baseline(layer, x, t, generator=torch.Generator().manual_seed(p["input_seed"])).delta
            )
        layer32, x32 = layer.float(), x.float()
        for t in steps:
            d[("float32", t)].append(scale_equivariance(layer32, x32, t))
    return d, plain


def case_fails(result, tolerances: dict, step: int) -> bool:
    """Whether a rescaling case fails as the property tests judge it: overall Delta or any
    pair's Delta above its tolerance (NaN fails)."""
    if not result.delta <= tolerances[(step, "all")]:
        return True
    return any(not d <= tolerances[(step, f"{i}-{j}")] for (i, j), d in result.per_pair.items())


PAPER_BASES = measured_bases()  # Hermite A and B, the optimised D and R (sesn.basis.registry), at every paper config


def tasks(
    seed: int,
    draws: int,
    mutant_draws: int,
    limit: int | None,
    only: str | None,
    bases: str = PAPER_BASES,
    corner_draws: int = CORNER_DRAWS,
):
    out = []
    if only != "paper":
        for cfg in list(all_configs())[:limit]:
            out.append(("grid", cfg.key, cfg, seed, draws, mutant_draws, corner_draws))
    if only != "grid":
        for name in PAPER_CONFIGS:
            for basis in bases:
                cfg = paper_config(name, basis)
                out.append(("paper", f"{name}/{basis}", cfg, seed, draws, mutant_draws, corner_draws))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--draws", type=int, default=12, help="draws per configuration and kind (corner draws included)")
    p.add_argument(
        "--corner-draws", type=int, default=CORNER_DRAWS, help="of the draws, this many at the canvas corner"
    )
    p.add_argument("--mutant-draws", type=int, default=2, help="draws per mutant (0: do not measure mutants)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--limit", type=int, default=None, help="measure only the first N grid configurations")
    p.add_argument("--only", choices=["grid", "paper"], default=None)
    p.add_argument("--paper-bases", default=PAPER_BASES, help="bases measured at the paper configurations")
    p.add_argument(
        "--merge", action="store_true", help="replace only the measured configurations' rows in existing CSV files"
    )
    p.add_argument("--out", type=Path, default=HERE, help="folder for the CSV files")
    p.add_argument(
        "--report",
        type=Path,
        default=HERE.parent / "results" / "mutants",
        help="folder for the family report (Markdown)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="only rewrite the summaries and the family report from the CSV files"
    )
    args = p.parse_args(argv)
    if args.report_only:
        df = pd.read_csv(args.out / TOLERANCE_CSV.name, keep_default_na=False, na_values=[""])
        mdf = pd.read_csv(args.out / MUTANT_CSV.name, keep_default_na=False, na_values=[""])
        summarise(df)
        summarise_mutants(mdf, df)
        write_family_report(df, mdf, args.report)
        return 0
    todo = tasks(args.seed, args.draws, args.mutant_draws, args.limit, args.only, args.paper_bases, args.corner_draws)
    rows, mrows = [], []
    t0 = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        for r, m in tqdm(pool.imap_unordered(measure_config, todo), total=len(todo), desc="configurations"):
            rows += r
            mrows += m
    print(f"measured {len(todo)} configurations in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    df = _write(
        pd.DataFrame(rows),
        args.out / TOLERANCE_CSV.name,
        ["source", "config", "kind", "step", "dtype", "pair"],
        args.merge,
    )
    summarise(df)
    if mrows:
        mdf = _write(
            pd.DataFrame(mrows), args.out / MUTANT_CSV.name, ["mutant", "source", "config", "kind", "step"], args.merge
        )
        summarise_mutants(mdf, df)
        write_family_report(df, mdf, args.report)
    return 0


def _write(df: pd.DataFrame, path: Path, order: list[str], merge: bool) -> pd.DataFrame:
    """Write the measured rows; with ``merge``, keep the other configurations' rows of an existing file."""
    from sesn.io import atomic_write_text

    if merge and path.exists():
        old = pd.read_csv(path, keep_default_na=False, na_values=[""])
        old = old[~old.config.isin(set(df.config))]
        df = pd.concat([old, df], ignore_index=True)
    df = df.sort_values(order)
    atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))
    return df


def family_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """R per (kind, basis): half the smallest plain/SES ratio over the distinguishable rows."""
    d = df[df.distinguishable & (df.dtype == "float64") & (df.pair == "all")]
    return d.groupby(["kind", "basis"]).ratio_min.min().apply(lambda r: math.floor(r / 2 * 10) / 10).rename("R")


def summarise(df: pd.DataFrame) -> None:
    df = df[df.pair == "all"]
    f64 = df[df.dtype == "float64"]
    print("\n## per family (float64): median Delta, median tolerance, median plain conv Delta, distinguishable rows")
    g = f64.groupby(["source", "kind", "basis"])
    print(
        pd.DataFrame(
            {
                "rows": g.size(),
                "delta_median": g.delta_median.median(),
                "tolerance_median": g.tolerance.median(),
                "tolerance_max": g.tolerance.max(),
                "plain_median": g.plain_median.median(),
                "distinguishable": g.distinguishable.sum(),
            }
        ).to_string(float_format=lambda v: f"{v:.3g}")
    )
    print("\n## R (Delta_layer <= Delta_plain / R) per (kind, basis):")
    print(family_ratio(df).to_string())
    bad = df[~df.distinguishable]
    print(f"\n## {len(bad)} rows not distinguishable from a plain conv (tolerance >= plain conv's Delta):")
    print(
        bad[["source", "config", "kind", "step", "dtype", "delta_max", "tolerance", "plain_min"]].to_string(index=False)
    )


def write_family_report(df: pd.DataFrame, mdf: pd.DataFrame, out: Path) -> None:
    """Per configuration family (source, kind, basis), float64, distinguishable rows: median
    Delta of a working layer, median tolerance, median plain-conv Delta, R, and for each
    mutant its median Delta and the fraction of cases it fails."""
    from sesn.io import atomic_write_text
    from sesn.report.artefacts import dataframe_to_markdown

    rows = df[(df.pair == "all") & (df.dtype == "float64") & df.distinguishable]
    m = mdf.merge(rows[["config", "kind", "step"]], on=["config", "kind", "step"])
    r = family_ratio(df)
    fam = []
    for (source, kind, basis), g in rows.groupby(["source", "kind", "basis"]):
        rec = {"source": source, "kind": kind, "basis": basis, "cases": len(g),
               "working Delta (median)": f"{g.delta_median.median():.2g}",
               "tolerance (median)": f"{g.tolerance.median():.2g}",
               "plain conv Delta (median)": f"{g.plain_median.median():.2g}",
               "R": f"{r.get((kind, basis), float('nan')):.1f}"}  # fmt: skip
        mg = m[(m.source == source) & (m.kind == kind) & (m.basis == basis)]
        for name, mm in mg.groupby("mutant"):
            med = mm.delta_min.median()
            rec[name] = (
                f"{med:.2g} ({100 * mm.killed.mean():.0f} %)"
                if math.isfinite(med)
                else f"NaN ({100 * mm.killed.mean():.0f} %)"
            )
        fam.append(rec)
    table = pd.DataFrame(fam)
    kill = m.groupby("mutant").killed.agg(["mean", "size"]).reset_index()
    kill["fails"] = [f"{100 * v:.1f} % of {n}" for v, n in zip(kill["mean"], kill["size"])]
    text = [
        "# Rescaling cases: working layers, tolerances, plain conv and mutants, per family",
        "",
        "Regenerate: `python -m equivariance_tests.measure_tolerances` (also rewrites the tolerance table).",
        "float64 rows that can be told apart from a plain conv; a case = (configuration, kind, scale step).",
        "Mutant cells: median over cases of the mutant's Delta (smallest over its draws), and in brackets the",
        "fraction of cases where every draw fails the case's overall or per-pair tolerance. NaN: the",
        "reference output vanishes on the compared slices (Delta undefined, which the tests count as a failure).",
        "",
        dataframe_to_markdown(table),
        "",
        "## Fraction of rescaling cases each mutant fails",
        "",
        dataframe_to_markdown(kill[["mutant", "fails"]]),
        "",
    ]
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "rescale_families.md", "\n".join(text))
    print(f"wrote {out / 'rescale_families.md'}")


def summarise_mutants(mdf: pd.DataFrame, df: pd.DataFrame) -> None:
    ok = df[(df.dtype == "float64") & df.distinguishable & (df.pair == "all")][["config", "kind", "step"]]
    m = mdf.merge(ok, on=["config", "kind", "step"])
    print("\n## fraction of (distinguishable) rescaling cases each mutant fails (Delta_min over draws > tolerance)")
    print(m.groupby(["mutant", "kind"]).killed.mean().unstack().to_string(float_format=lambda v: f"{v:.3f}"))
    print("\n## median mutant Delta per (mutant, kind)")
    print(m.groupby(["mutant", "kind"]).delta_min.median().unstack().to_string(float_format=lambda v: f"{v:.3g}"))


if __name__ == "__main__":
    sys.exit(main())
