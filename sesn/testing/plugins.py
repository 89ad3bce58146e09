"""Property tests for a user's own layer (a plug-in), with tolerances measured for it.

A plug-in module registers a case when imported::

    from sesn.testing.plugins import register_equivariance_case
    register_equivariance_case("my lift", build=lambda: MyLift(1, 6, scales=[1, 1.4, 2]),
                               kind="T->H", scales=[1, 1.4, 2], in_channels=1, out_channels=6, kernel_size=11)

Then, once, measure its tolerances (8 draws of weights and smooth inputs per scale step,
tolerance = 3 x the largest Delta rounded up to 2 digits, the rule of this package's own
tables: :mod:`sesn.testing.tolerance`)::

    python -m sesn.testing.plugins measure --import mypkg.layers --out my_tolerances.csv

and run the property tests on it (hypothesis draws fresh weights and inputs; each must stay
within its tolerance and, for T->H and H->H layers, below a plain conv's Delta on the same
input; a case without measured tolerances fails, saying how to measure them)::

    SESN_IMPORT=mypkg.layers SESN_PLUGIN_TOLERANCES=my_tolerances.csv pytest equivariance_tests -k plugin

Protocols (docs/equivariance.md): T->H and H->H layers the joint rescale + scale-axis
shift (``sesn.equivariance.scale_equivariance``); T->T layers the plain rescale at the
factors sigma_i / sigma_(i+t), averaged over the pairs.
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
from sesn.testing.tolerance import tolerance_from
from sesn.transforms import smooth_random_field

KINDS = ("T->H", "H->H", "T->T")
DRAWS = 8
DEFAULT_TOLERANCES = sesn_settings.variable("SESN_PLUGIN_TOLERANCES").default


@dataclasses.dataclass(frozen=True)
class EquivarianceCase:
    name: str
    build: Callable[[], nn.Module]
    kind: str
    scales: tuple[float, ...]
    in_channels: int
    out_channels: int
    kernel_size: int  # of the plain conv it is compared with
    size: int = 48


CASES: dict[str, EquivarianceCase] = {}


def register_equivariance_case(
    name, build, kind, scales, in_channels, out_channels, kernel_size, size=48
) -> EquivarianceCase:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if name in CASES:
        raise ValueError(f"equivariance case {name!r} is already registered")
    if len(scales) < 2:
        raise ValueError(f"{name}: needs at least 2 scales, got {list(scales)}")
    case = EquivarianceCase(
        name, build, kind, tuple(float(s) for s in scales), in_channels, out_channels, kernel_size, size
    )
    CASES[name] = case
    return case


class _PlainShape(nn.Module):
    """What :func:`plain_conv_baseline` reads from a layer: scales, kernel and channel counts."""

    def __init__(self, case: EquivarianceCase):
        super().__init__()
        self.scales, self.kernel_size = list(case.scales), case.kernel_size
        self.in_channels, self.out_channels = case.in_channels, case.out_channels


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
            _PlainShape(case), x, step, generator=torch.Generator().manual_seed(20_000 + seed)
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


def main(argv=None) -> int:
    from sesn.plugins import load_plugins

    p = argparse.ArgumentParser(
        "python -m sesn.testing.plugins", description="measure tolerances of plug-in equivariance cases"
    )
    p.add_argument("command", choices=["measure", "list"])
    p.add_argument(
        "--import", dest="modules", action="append", default=[], help="plug-in module (repeatable; also $SESN_IMPORT)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"tolerance CSV (default: $SESN_PLUGIN_TOLERANCES or {DEFAULT_TOLERANCES})",
    )
    p.add_argument("--draws", type=int, default=DRAWS)
    args = p.parse_args(argv)
    load_plugins(args.modules)
    # plug-ins register into the importable module, not into __main__ (python -m)
    from sesn.testing import plugins as registry

    CASES, measure_tolerances = registry.CASES, registry.measure_tolerances  # noqa: N806
    if not CASES:
        print("no plug-in equivariance cases registered (pass --import MODULE or set SESN_IMPORT)")
        return 2
    if args.command == "list":
        for c in CASES.values():
            print(f"{c.name}: {c.kind}, scales {list(c.scales)}")
        return 0
    import pandas as pd

    from sesn.report.io import atomic_write_text

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
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
