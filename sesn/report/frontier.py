"""The equivariance–accuracy frontier: for each basis in the same model, its equivariance
error against the test error its model trains to, with the Pareto front marked.

    sesn report frontier [--training results/fashion_mnist_scale results/frontier_quick]
                         [--equivariance results/equivariance]
                         [--config mnist_ses_scalar_28] [--out results/frontier]

Training side: the ``table.csv`` of a reproduce results folder (``sesn reproduce table``),
one row per model and settings group, mean ± std over realizations; rows are never merged
across settings groups or folders (each folder is its own protocol). The basis of a model is
its registry entry's ``basis``. Equivariance side: ``equivariance_stacks.csv`` of ``sesn
report equivariance`` (Delta of T->H, T->H->H, T->ReLU->H and 4 layers with ReLU, both rescale
protocols) at the model's own scales (``--config``). A point is on the front when no other
point of the same protocol has both a lower (or equal) test error and a lower (or equal)
Delta, one of them strictly (Delta: T->ReLU->H, this project's protocol; the table shows the
others). Writes ``frontier.{md,csv,png}``.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from sesn.errors import InputError, MissingInputError
from sesn.io import atomic_write_text
from sesn.models import get_model_info
from sesn.models.mnist import OPTIMISED_PREFIX
from sesn.report import trained_equivariance
from sesn.report.artefacts import dataframe_to_markdown, save_figure

# the trained models' own numbers (sesn report trained-equivariance), when the folder has them
TRAINED = ("logit Delta", "flips (%)", "T->H Delta (ours)")

STACKS = ("T->H", "T->ReLU->H", "4 layers, ReLU")
FRONT_STACK = "T->ReLU->H"


def load_equivariance(path: Path, config: str):
    """``{basis: {(protocol, stack): Delta}}`` at the scales of ``config``."""
    import pandas as pd

    path = Path(path)
    csv = path / "equivariance_stacks.csv" if path.is_dir() else path
    if not csv.exists():
        raise MissingInputError(f"{csv}: not found; run `sesn report equivariance` first")
    df = pd.read_csv(csv)
    rows = df[df.scales.str.startswith(f"{config} ")]
    if rows.empty:
        raise InputError(f"{csv}: no stacks at the scales of {config!r}; have {sorted(df.scales.unique())}")
    if "basis_kind" not in rows.columns:
        raise InputError(f"{csv}: no basis_kind column (written before rows named their basis); run `sesn report "
                         "equivariance` again")  # fmt: skip
    out: dict = {}
    for r in rows.fillna({"variant": ""}).itertuples():
        if not r.variant:  # ablation rows (basis R with its span at sigma_0) are not a basis' own
            out.setdefault(r.basis_kind, {})[(r.protocol, r.stack)] = float(r.delta)
    return out


def load_training(folder: Path):
    """The rows of a reproduce table with their basis (registry), one per model and settings group."""
    import pandas as pd

    folder = Path(folder)
    csv = folder / "table.csv"
    if not csv.exists():
        raise MissingInputError(f"{csv}: not found; run `sesn reproduce table --results {folder}` first")
    df = pd.read_csv(csv)

    def basis(model: str) -> str | None:  # None: a model this process has not registered (a plug-in's)
        try:
            return get_model_info(model).basis
        except ValueError:
            return None

    df["basis"] = [basis(m) for m in df.model]
    unknown = sorted(set(df.model[df.basis.isna()]))
    if unknown:
        print(f"{folder}: skipping models not registered here (load their plug-in with --import): {', '.join(unknown)}")
    df = df[df.basis.notna()].copy()
    df["protocol"] = folder.name
    trained = trained_equivariance.load(folder)
    if trained is None:
        return df.assign(**{f"trained: {c}": math.nan for c in TRAINED})
    # mean over the realizations of the same model and settings group (never across groups)
    means = trained.groupby(["model", "group"])[list(TRAINED)].mean().add_prefix("trained: ").reset_index()
    df["group"], means["group"] = df.group.astype(str), means.group.astype(str)  # hex ids may parse as numbers
    return df.merge(means, on=["model", "group"], how="left")


def pareto_front(points: list[tuple[float, float]]) -> list[bool]:
    """For each (x, y), whether no other point is <= in both and < in one (both minimised)."""
    on = []
    for i, (x, y) in enumerate(points):
        dominated = any((a <= x and b <= y) and (a < x or b < y) for j, (a, b) in enumerate(points) if j != i)
        on.append(not dominated and math.isfinite(x) and math.isfinite(y))
    return on


def config_of_model(model: str) -> str:
    """The paper configuration a registered MNIST SESN model is built on (its optimised-basis
    variants share it: mnist_disco_scalar_28, mnist_sesr_scalar_28 -> mnist_ses_scalar_28)."""

    infixes = "|".join(p.strip("_") for p in OPTIMISED_PREFIX.values())
    return re.sub(rf"^mnist_({infixes})_", "mnist_ses_", model)


def frontier_table(training, equivariance: dict, config: str | None = None):
    import pandas as pd

    recs = []
    for _, r in training[training.basis != ""].iterrows():
        eq = equivariance.get(r.basis)
        if eq is None or (config is not None and config_of_model(r.model) != config):
            continue  # no stacks measured for this basis, or the model has other scales
        rec = {
            "protocol": r.protocol,
            "model": r.model,
            "basis": r.basis,
            "column": r.column,
            "settings": r.group,
            "n": int(r.n),
            "test error (%)": float(r.ours_mean),
            "std": float(r.ours_std) if r.n > 1 else float("nan"),
        }
        for protocol in ("ours", "independent"):
            for stack in STACKS:
                rec[f"{stack} ({protocol})"] = eq.get((protocol, stack), float("nan"))
        for c in TRAINED:
            rec[f"trained: {c}"] = float(r.get(f"trained: {c}", float("nan")))
        recs.append(rec)
    df = pd.DataFrame(recs)
    if df.empty:
        return df
    df["on front"] = False
    for (_, _), g in df.groupby(["protocol", "column"]):
        on = pareto_front(list(zip(g[f"{FRONT_STACK} (ours)"], g["test error (%)"])))
        df.loc[g.index, "on front"] = on
    return df


def references(training):
    """The trained models without a steerable basis (the CNN) of each protocol and column:
    not on the front, shown beside it."""
    refs = training[training.basis == ""]
    cols = ["protocol", "model", "column", "n", "ours_mean", "ours_std"] + [f"trained: {c}" for c in TRAINED]
    return refs[[c for c in cols if c in refs.columns]].reset_index(drop=True)


def write(df, out: Path, sources: list[str], refs=None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "frontier.csv", df.to_csv(index=False))
    shown = df.copy()
    shown["test error (%)"] = [
        f"{m:.2f} ± {s:.2f} (n={n})" if n > 1 else f"{m:.2f} (n=1)"
        for m, s, n in zip(df["test error (%)"], df["std"], df["n"])
    ]
    shown = shown.drop(columns=["std", "settings"])
    for c in shown.columns:
        if "(ours)" in c or "(independent)" in c or c.startswith("trained: "):
            shown[c] = shown[c].map(lambda v: "" if v != v else f"{v:.2g}")
    shown = shown.drop(columns=[c for c in shown.columns if c.startswith("trained: ") and (df[c] != df[c]).all()])
    shown["on front"] = shown["on front"].map(lambda v: "**yes**" if v else "")
    md = [
        "# Equivariance–accuracy frontier",
        "",
        f"Generated by `sesn report frontier` from {', '.join(sources)}. One row per trained model and "
        "settings group (never averaged across them); test error mean ± std over realizations. Delta: "
        "normalised equivariance error of the layer stack with that basis at the model's scales "
        "(`sesn report equivariance`, section Stacks; `ours` = this project's rescale protocol, "
        f"`independent` = F.interpolate on other inputs). Front: no other basis of the same protocol "
        f"and column has both a lower test error and a lower {FRONT_STACK} Delta (ours). `trained:` columns "
        "(where the folder has them, `sesn report trained-equivariance`): the trained models' own numbers on "
        "their test images, mean over realizations: logit Delta and the share of predictions that flip under a "
        "rescale by 2^-1/2 about the centre, and the trained first layer's T->H Delta.",
        "",
        dataframe_to_markdown(shown),
    ]
    refs = refs if refs is not None and len(refs) else None
    if refs is not None:
        ref_shown = refs.rename(columns={"ours_mean": "test error (%)"}).copy()
        ref_shown["test error (%)"] = [
            f"{m:.2f} ± {s:.2f} (n={n})" if n > 1 else f"{m:.2f} (n=1)"
            for m, s, n in zip(refs.ours_mean, refs.ours_std, refs.n)
        ]
        ref_shown = ref_shown.drop(columns=["ours_std", "n"])
        for c in ref_shown.columns:
            if c.startswith("trained: "):
                ref_shown[c] = ref_shown[c].map(lambda v: "" if v != v else f"{v:.2g}")
        md += ["", "Beside the front, models without a steerable basis (no stack Delta; dotted line in the plot):",
               "", dataframe_to_markdown(ref_shown)]  # fmt: skip
    atomic_write_text(out / "frontier.md", "\n".join(md) + "\n")
    groups = list(df.groupby(["protocol", "column"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, ((protocol, column), g) in zip(axes[0], groups):
        x, y = g[f"{FRONT_STACK} (ours)"], g["test error (%)"]
        ax.errorbar(x, y, yerr=g["std"].fillna(0), fmt="o", capsize=3)
        for xi, yi, b in zip(x, y, g.basis):
            ax.annotate(b, (xi, yi), textcoords="offset points", xytext=(5, 4))
        front = g[g["on front"]].sort_values(f"{FRONT_STACK} (ours)")
        ax.plot(front[f"{FRONT_STACK} (ours)"], front["test error (%)"], "--", color="gray", lw=1)
        if refs is not None:
            for r in refs[(refs.protocol == protocol) & (refs.column == column)].itertuples():
                ax.axhline(r.ours_mean, ls=":", color="k", lw=1)
                ax.annotate(r.model, (x.min(), r.ours_mean), textcoords="offset points", xytext=(0, 3), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel(f"{FRONT_STACK} Delta (this project's protocol)")
        ax.set_ylabel("test error (%)")
        ax.set_title(f"{protocol}, column {column}", fontsize=9)
    fig.suptitle("Equivariance vs accuracy (dashed: Pareto front; error bars: std over realizations)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "frontier.png")
    plt.close(fig)
    return out / "frontier.md"


def get_args_parser(add_help=True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn report frontier", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )  # fmt: skip
    p.add_argument("--training", type=Path, nargs="+",
                   default=[Path("results/fashion_mnist_scale"), Path("results/frontier_quick")],
                   help="reproduce results folders (each with table.csv; each is its own protocol)")  # fmt: skip
    p.add_argument("--equivariance", type=Path, default=Path("results/equivariance"),
                   help="folder (or file) with equivariance_stacks.csv")  # fmt: skip
    p.add_argument("--config", default="mnist_ses_scalar_28", help="the model configuration whose scales to read")
    p.add_argument("--out", type=Path, default=Path("results/frontier"))
    return p


def main(args) -> int:
    import pandas as pd

    equivariance = load_equivariance(args.equivariance, args.config)
    training = pd.concat([load_training(f) for f in args.training], ignore_index=True)
    df = frontier_table(training, equivariance, args.config)
    if df.empty:
        raise InputError(f"no trained model of {[str(f) for f in args.training]} has a basis with measured stacks")
    path = write(df, args.out, [str(f) for f in args.training] + [str(args.equivariance)], references(training))
    print(path.read_text())
    return 0
