"""Property tests for a user's own layer (a plug-in), judged against references the package builds.

A plug-in module registers a case when imported::

    from sesn.testing.plugins import register_equivariance_case
    register_equivariance_case("my lift", build=lambda: MyLift(1, 6, scales=[1.5, 2.12, 3.0]),
                               kind="T->H", scales=[1.5, 2.12, 3.0], in_channels=1, out_channels=6,
                               kernel_size=15, effective_size=7)

and runs its property tests with the pytest plug-in of the installed package (no copy of
this repository needed; :mod:`sesn.testing.pytest_plugin`)::

    pytest --sesn-import mypkg.layers

Each hypothesis example draws the layer's weights, a smooth input and a scale step; the
layer's Delta at that step and at step 1, per scale pair, is compared with the package's own
layers at the same configuration on the same input (:mod:`sesn.testing.verdict`: the
verdict levels ``reference`` (default for T->H / H->H), ``method:NAME``, ``rank:K``,
``regression``). ``python -m sesn.testing.plugins verdict --import mypkg.layers`` prints the
verdicts of a few examples without pytest; ``measure`` writes the self-measured tolerances
that only the ``regression`` level reads.

Protocols (docs/equivariance.md): T->H and H->H layers the joint rescale + scale-axis
shift (``sesn.equivariance.scale_equivariance``); T->T layers the plain rescale at the
factors sigma_i / sigma_(i+t), per pair.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from sesn import settings as sesn_settings
from sesn.equivariance import plain_conv_baseline, rescale_equivariance, scale_equivariance
from sesn.io import atomic_write_text
from sesn.markdown import dataframe_to_markdown
from sesn.plugin_loader import load_plugins
from sesn.testing import plugins as registry
from sesn.testing.tolerance import read_tolerances, tolerance_from, tolerances_path  # noqa: F401  (part of this module's API)
from sesn.testing.verdict import Level, PlainShape, default_level, parse_level  # noqa: F401
from sesn.transforms import smooth_random_field

KINDS = ("T->H", "H->H", "T->T")
DRAWS = 8
DEFAULT_TOLERANCES = sesn_settings.variable("SESN_PLUGIN_TOLERANCES").default


@dataclasses.dataclass(frozen=True)
class EquivarianceCase:
    """A user's layer and the configuration the references are built for.

    Attributes:
        kind: ``"T->H"``, ``"H->H"`` or ``"T->T"``.
        scales: the layer's scales (T->T: the scales whose ratios are the rescale factors).
        kernel_size, effective_size: of the package's layers (and plain conv) it is compared with.
        scale_size: H->H only, the taps along the scale axis.
        basis_kwargs: further arguments of the reference bases (``mult``, ``max_order``).
        level: what the layer claims (:class:`sesn.testing.verdict.Level`).
        size: the input canvas.
    """

    name: str
    build: Callable[[], nn.Module]
    kind: str
    scales: tuple[float, ...]
    in_channels: int
    out_channels: int
    kernel_size: int
    size: int = 48
    effective_size: int | None = None
    scale_size: int = 1
    basis_kwargs: tuple = ()
    level: Level = dataclasses.field(default_factory=lambda: Level("reference"))


CASES: dict[str, EquivarianceCase] = {}


def register_equivariance_case(
    name,
    build,
    kind,
    scales,
    in_channels,
    out_channels,
    kernel_size,
    size=48,
    effective_size=None,
    scale_size=1,
    basis_kwargs=None,
    level=None,
) -> EquivarianceCase:
    """Register a layer for the property tests (see the module docstring and docs/extending.md).

    ``level`` (default: ``"reference"`` for T->H and H->H, ``"method:CNN:1"`` for T->T) is what
    the layer claims; the reference level needs ``effective_size``."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if name in CASES:
        raise ValueError(f"equivariance case {name!r} is already registered")
    if len(scales) < 2:
        raise ValueError(f"{name}: needs at least 2 scales, got {list(scales)}")
    if scale_size < 1 or (scale_size != 1 and kind != "H->H"):
        raise ValueError(f"{name}: scale_size is an H->H layer's taps (>= 1), got {scale_size} for {kind}")
    lvl = default_level(kind) if level is None else parse_level(level)
    if lvl.name == "reference" and effective_size is None:
        raise ValueError(
            f"{name}: level reference needs effective_size= (basis functions per axis), so the package can build "
            "its own layers at the same configuration; or pass level='regression'"
        )
    case = EquivarianceCase(
        name,
        build,
        kind,
        tuple(float(s) for s in scales),
        in_channels,
        out_channels,
        kernel_size,
        size,
        effective_size,
        scale_size,
        tuple(sorted(dict(basis_kwargs or {}).items())),
        lvl,
    )
    CASES[name] = case
    return case


def unregister_equivariance_case(name: str) -> None:
    """Remove a case (tests)."""
    CASES.pop(name, None)


def measure(case: EquivarianceCase, seed: int) -> dict[int, tuple[float, float]]:
    """{step: (Delta of the layer, Delta of a plain conv on the same input)} for one draw."""
    torch.manual_seed(seed)
    layer = case.build().double().eval()
    g = torch.Generator().manual_seed(10_000 + seed)
    s = len(case.scales)
    shape = (
        (2, case.in_channels, case.size, case.size)
        if case.kind != "H->H"
        else (2, case.in_channels, s, case.size, case.size)
    )
    x = smooth_random_field(shape, g)
    out = {}
    for step in range(1, s):
        if case.kind == "T->T":
            factors = [case.scales[i] / case.scales[i + step] for i in range(s - step)]
            d = sum(rescale_equivariance(layer, x, a) for a in factors) / len(factors)
        else:
            d = scale_equivariance(layer, x, step, list(case.scales)).delta
        plain = plain_conv_baseline(
            PlainShape(case), x, step, generator=torch.Generator().manual_seed(20_000 + seed)
        ).delta
        out[step] = (d, plain)
    return out


def measure_tolerances(case: EquivarianceCase, draws: int = DRAWS) -> list[dict]:
    per_step: dict[int, list] = {}
    for seed in range(draws):
        for step, (d, plain) in measure(case, seed).items():
            per_step.setdefault(step, []).append((d, plain))
    rows = []
    for step, vals in per_step.items():
        worst = max(d for d, _ in vals)
        rows.append(
            dict(
                case=case.name,
                kind=case.kind,
                step=step,
                draws=draws,
                max_delta=worst,
                tolerance=tolerance_from([worst]),
                plain_min=min(p for _, p in vals),
            )
        )
    return rows


def _table_row(case, results) -> dict:
    """One case's verdicts over its examples: passes, median Delta per step, ratio to the anchor."""
    import statistics

    row = {"case": case.name, "kind": case.kind, "level": str(results[0].level)}
    row["examples passed"] = f"{sum(r.passed for r in results)} of {len(results)}"
    for step in range(1, len(case.scales)):
        deltas = [sum(p.delta for p in r.pairs if p.step == step) / max(1, sum(p.step == step for p in r.pairs))
                  for r in results if any(p.step == step for p in r.pairs)]  # fmt: skip
        row[f"Delta step {step} (median of pairs' mean)"] = f"{statistics.median(deltas):.3g}" if deltas else ""
    ratios = [r.worst_ratio() for r in results if r.worst_ratio() == r.worst_ratio()]
    row["largest Delta / anchor: median (max)"] = (
        f"{statistics.median(ratios):.3g} ({max(ratios):.3g})" if ratios else ""
    )
    return row


def _write_table(args, rows) -> None:
    import pandas as pd

    mods = " ".join(f"--import {m}" for m in args.modules)
    text = [
        "# Verdicts of the registered equivariance cases",
        "",
        f"Generated by `python -m sesn.testing.plugins verdict {mods} --examples {args.examples}"
        + (f" --level {args.level}" if args.level else "")
        + f" --table {args.table}` (seeds 0..{args.examples - 1}; each example its seed's step and step 1). "
        "Delta per step: the mean over the step's pairs, median over the examples that measured that step. "
        "Anchor: what the level bounds Delta by (sesn.testing.verdict).",
        "",
        dataframe_to_markdown(pd.DataFrame(rows)),
        "",
    ]
    atomic_write_text(args.table, "\n".join(text))
    print(f"wrote {args.table}")


def main(argv=None) -> int:

    p = argparse.ArgumentParser(
        "python -m sesn.testing.plugins",
        description="the verdicts of plug-in equivariance cases (verdict), their self-measured tolerances for the "
        "regression level (measure), or the registered cases (list)",
    )
    p.add_argument("command", choices=["verdict", "measure", "list"])
    p.add_argument(
        "--import", dest="modules", action="append", default=[], help="plug-in module (repeatable; also $SESN_IMPORT)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"measure: tolerance CSV (default: $SESN_PLUGIN_TOLERANCES or {DEFAULT_TOLERANCES})",
    )
    p.add_argument("--draws", type=int, default=DRAWS, help="measure: draws per case")
    p.add_argument("--examples", type=int, default=8, help="verdict: examples per case (seeds 0..N-1)")
    p.add_argument("--level", default=None, help="verdict: override every case's level (e.g. reference:best)")
    p.add_argument("--verbose", action="store_true", help="verdict: print every example's full verdict")
    p.add_argument(
        "--table", type=Path, default=None, help="verdict: also write a Markdown table of the cases' verdicts here"
    )
    args = p.parse_args(argv)
    load_plugins(args.modules)
    # plug-ins register into the importable module, not into __main__ (python -m)

    CASES, measure_tolerances = registry.CASES, registry.measure_tolerances  # noqa: N806
    if not CASES:
        print("no plug-in equivariance cases registered (pass --import MODULE or set SESN_IMPORT)")
        return 2
    if args.command == "list":
        for c in CASES.values():
            print(f"{c.name}: {c.kind}, scales {list(c.scales)}, level {c.level}")
        return 0
    if args.command == "verdict":
        from sesn.testing.verdict import VerdictError, verdict

        failed, table = 0, []
        for case in CASES.values():
            try:
                results = [verdict(case, seed, level=args.level) for seed in range(args.examples)]
            except VerdictError as e:
                print(f"error: {e}")
                return 2
            bad = [r for r in results if not r.passed]
            failed += bool(bad)
            table.append(_table_row(case, results))
            worst = max(results, key=lambda r: r.worst_ratio() if r.worst_ratio() == r.worst_ratio() else -1)
            print(
                f"{case.name} ({case.kind}, level {results[0].level}): {len(results) - len(bad)} of {len(results)} "
                f"examples pass; largest Delta / anchor {worst.worst_ratio():.3g} (seed {worst.example.seed})"
            )
            for r in results if args.verbose else bad[:1]:
                print(r.message())
        if args.table is not None:
            _write_table(args, table)
        return 1 if failed else 0
    import pandas as pd

    rows = [r for case in CASES.values() for r in measure_tolerances(case, args.draws)]
    out = args.out or tolerances_path()
    atomic_write_text(out, pd.DataFrame(rows).to_csv(index=False))
    for r in rows:
        flag = (
            ""
            if r["kind"] == "T->T" or r["tolerance"] < r["plain_min"]
            else "   <- not below a plain conv: the tests will fail"
        )
        print(
            f"{r['case']} step {r['step']}: max Delta {r['max_delta']:.3g} over {r['draws']} draws, "
            f"tolerance {r['tolerance']:.3g}, plain conv >= {r['plain_min']:.3g}{flag}"
        )
    print(f"wrote {out} (read only by cases that claim level='regression')")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
