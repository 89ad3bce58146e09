"""The power of the plug-in verdict: how often it fails a layer with a sigma error of a given size.

    sesn report verdict-power [--cases 40] [--errors 1 2 5 10 20] [--bases A B D] [--out results/verdict]

A *sigma-error layer* is this package's own steerable layer of basis A, B or D whose functions
at some scales are built at (1 - e) x their sigma (the rest of the basis untouched): at the
largest scale only, or at every odd scale index. For each basis, ``--cases`` drawn cases (a
paper MNIST configuration, a kind T->H or H->H, input channels, canvas and seed: the same
cases for every error size and pattern, so the columns are paired) are registered as plug-in
cases and judged by :func:`sesn.testing.verdict.verdict` at its drawn step and step 1, at the
default level (``reference``: 2 x the worst of the package's bases) and at the level naming
the basis the layer is (``reference:<basis>``). Error 0 is the control: the share of correct
layers the verdict fails (its false-alarm rate). Writes ``power.{md,csv}`` and ``power.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sesn.basis import basis_tensor
from sesn.io import atomic_write_text
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.report.artefacts import dataframe_to_markdown, save_figure
from sesn.testing.plugins import EquivarianceCase
from sesn.testing.strategies import PAPER_CONFIGS, paper_config
from sesn.testing.verdict import Level, ReferenceCache, verdict

ERRORS = (1, 2, 5, 10, 20)  # percent
PATTERNS = ("largest scale", "odd scales")
TARGET = 0.9


def affected_scales(pattern: str, num_scales: int) -> list[int]:
    if pattern == "largest scale":
        return [num_scales - 1]
    if pattern == "odd scales":
        return list(range(1, num_scales, 2))
    raise ValueError(f"unknown pattern {pattern!r}; one of {PATTERNS}")


@functools.lru_cache(maxsize=64)
def _basis64(spec):
    return basis_tensor(spec, dtype=torch.float64)


class _SigmaErrorMixin:
    """A steerable layer whose basis at ``affected`` scales is built at ``factor`` x sigma (kept
    across ``.double()`` / ``.to()``, which rebuild the basis from the spec)."""

    def set_sigma_error(self, affected, factor):
        self._sigma_error = (tuple(affected), float(factor))
        self._perturb()
        self.compute_mode = "direct" if self.supports_mode("direct") else "naive"  # paths that read the basis
        return self

    def _perturb(self):
        affected, factor = getattr(self, "_sigma_error", ((), 1.0))
        if not affected or factor == 1.0:
            return
        scales = list(self.spec.scales)
        for i in affected:
            scales[i] *= factor
        wrong = _basis64(dataclasses.replace(self.spec, scales=tuple(scales)))
        basis = self.basis.detach().clone().double()
        basis[:, list(affected)] = wrong[:, list(affected)]
        self.basis = basis.to(self.basis.dtype).to(self.basis.device)
        self._kernel_cache = {}
        self._table_cache = {}

    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)
        self._perturb()
        return result


class SigmaErrorLift(_SigmaErrorMixin, SESConv_Z2_H):
    pass


class SigmaErrorHH(_SigmaErrorMixin, SESConv_H_H):
    pass


@dataclasses.dataclass(frozen=True)
class PowerCase:
    config: str
    kind: str  # "T->H" or "H->H"
    cin: int
    size: int
    seed: int


def draw_cases(n: int, seed: int) -> list[PowerCase]:
    rng = random.Random(seed)
    return [
        PowerCase(
            rng.choice(PAPER_CONFIGS),
            rng.choice(("T->H", "H->H")),
            rng.choice((1, 2, 3)),
            rng.choice((40, 48, 56, 64)),
            rng.randrange(2**20),
        )  # fmt: skip
        for _ in range(n)
    ]


def plugin_case(pc: PowerCase, basis: str, pattern: str, error: float) -> EquivarianceCase:
    """The registered-case form of a sigma-error layer (``error`` a fraction; 0: the correct layer)."""
    cfg = dataclasses.replace(paper_config(pc.config), basis_type=basis)
    kw = dict(cfg.kwargs(), padding=cfg.kernel_size // 2)
    extra = {"mult": cfg.mult}  # the configuration's sub-scale ratio, for the references of basis B and R
    affected = affected_scales(pattern, len(cfg.scales))

    def build():
        layer = SigmaErrorLift(pc.cin, 6, **kw) if pc.kind == "T->H" else SigmaErrorHH(pc.cin, 6, 1, **kw)
        return layer.set_sigma_error(affected, 1.0 - error)

    name = f"{basis} {pc.kind} {pc.config} {pattern} {error:.0%}"
    return EquivarianceCase(
        name, build, pc.kind, tuple(cfg.scales), pc.cin, 6, cfg.kernel_size, pc.size, cfg.effective_size, 1,
        tuple(sorted(extra.items())), Level("reference"),
    )  # fmt: skip


def measure(bases, errors, cases, levels, progress=True) -> list[dict]:
    cache = ReferenceCache()
    rows = []
    jobs = [(b, p, e) for b in bases for p in PATTERNS for e in (0, *errors) if not (e == 0 and p != PATTERNS[0])]
    for basis, pattern, error in tqdm(jobs, desc="verdict power", unit="cell", disable=not progress):
        for pc in cases:
            case = plugin_case(pc, basis, pattern, error / 100)
            for level in levels:
                lv = f"reference:{basis}" if level == "own" else level
                v = verdict(case, pc.seed, level=lv, cache=cache)
                rows.append(dict(basis=basis, pattern="none (control)" if error == 0 else pattern, error=error,
                                 level="reference (default)" if level == "reference" else "reference:<its basis>",
                                 kind=pc.kind, config=pc.config, seed=pc.seed, failed=not v.passed,
                                 worst_ratio=v.worst_ratio()))  # fmt: skip
    return rows


def summarise(df):
    import pandas as pd

    out = []
    errors = sorted(e for e in set(df.error) if e > 0)
    for (level, basis), g in df.groupby(["level", "basis"], sort=False):
        control = g[g.error == 0].failed.mean()
        for pattern in PATTERNS:
            rates = g[g.pattern == pattern].groupby("error").failed.mean()
            rec = {"level": level, "basis": basis, "sigma error at": pattern, "control (0 %)": f"{control:.2f}"}
            rec.update({f"{e} %": f"{rates[e]:.2f}" if e in rates else "" for e in errors})
            caught = [e for e, r in rates.items() if r >= TARGET]
            rec[f"smallest error failed in >= {TARGET:.0%}"] = f"{min(caught)} %" if caught else "none measured"
            out.append(rec)
    return pd.DataFrame(out)


def plot(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = list(dict.fromkeys(df.level))
    fig, axes = plt.subplots(1, len(levels), figsize=(6 * len(levels), 4), squeeze=False, sharey=True)
    control = df[df.error == 0]
    for ax, level in zip(axes[0], levels):
        for (basis, pattern), g in df[(df.level == level) & (df.error > 0)].groupby(["basis", "pattern"], sort=False):
            c = control[(control.level == level) & (control.basis == basis)].failed.mean()
            rates = g.groupby("error").failed.mean()
            ax.plot([0, *rates.index], [c, *rates.values], marker="o",
                    linestyle="-" if pattern == "odd scales" else "--", label=f"{basis}, {pattern}")  # fmt: skip
        ax.axhline(TARGET, color="grey", lw=0.8, ls=":")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("sigma error (%)")
        ax.set_title(f"level {level}: share of cases failed", fontsize=9)
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_ylabel("detection rate (0 %: false alarms)")
    axes[0, -1].legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(
        "sesn report verdict-power",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    p.add_argument("--cases", type=int, default=40, help="drawn cases per basis (the same for every error)")
    p.add_argument("--errors", type=float, nargs="+", default=list(ERRORS), help="sigma errors in percent")
    p.add_argument("--bases", nargs="+", default=["A", "B", "D"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("results/verdict"))
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(args) -> int:
    import pandas as pd

    if args.cases < 1:
        raise SystemExit("error: --cases must be >= 1")
    t0 = time.perf_counter()
    cases = draw_cases(args.cases, args.seed)
    errors = [int(e) if float(e).is_integer() else e for e in args.errors]
    df = pd.DataFrame(measure(args.bases, errors, cases, ("reference", "own"), progress=not args.quiet))
    summary = summarise(df)
    out = args.out
    atomic_write_text(out / "power.csv", df.to_csv(index=False))
    md = [
        "# Power of the plug-in verdict against sigma errors",
        "",
        f"Generated by `sesn report verdict-power --cases {args.cases} --errors {' '.join(map(str, errors))} "
        f"--bases {' '.join(args.bases)} --seed {args.seed}` in {time.perf_counter() - t0:.0f} s. "
        "Each cell: the share of "
        f"{args.cases} drawn cases (paper MNIST configurations, T->H or H->H, 1-3 input channels, 40-64 px, the same "
        "cases in every column) whose verdict fails, for this package's layer of the basis with its functions at the "
        "given scales built at (1 - error) x sigma. Each case is one hypothesis-like example: its drawn scale step "
        "and step 1, every pair (sesn.testing.verdict). Control (0 %): correct layers, i.e. the false-alarm rate. "
        "Levels: `reference` (the default: Delta <= 2 x the worst of the package's bases A, B, D, R at every judged "
        "pair, and below a plain conv) and `reference:<its basis>` (2 x the basis the layer is).",
        "",
        dataframe_to_markdown(summary),
        "",
    ]
    atomic_write_text(out / "power.md", "\n".join(md))
    plot(df, out / "power.png")
    print("\n".join(md))
    print(f"wrote {out}/power.md, power.csv, power.png")
    return 0
