"""Aggregate reproduction runs into the paper's table layout, our numbers beside the
published ones.

    sesn reproduce table [--results results/reproduce]

Rows = models, columns = 28x28, 28x28+, 56x56, 56x56+ (MNIST-scale test error %, mean ±
std over realizations, n = number of realizations). Beside each: the paper's number
(docs/models.md) and the difference in units of sigma, (ours - paper) / sqrt(std_ours^2 +
std_paper^2) (std_ours taken as 0 with one realization). Writes ``table.md``,
``table.csv``, ``table.png`` and ``results.yml`` (one line per run, like the authors'
scripts append) into the results folder.

Only runs with identical settings are averaged: a record's settings (everything that
determines its result, minus the seed and the data realization, which are what the mean
is over) give it a group id; a (row, column) with runs of several groups gets one line per
group, marked with the id, and the settings that differ are listed under the table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from sesn.errors import MissingInputError
from sesn.io import read_json
from sesn.models import get_model_info
from sesn.report.artefacts import atomic_write_text, dataframe_to_markdown, save_figure
from sesn.train.record import group_id

COLUMN_NAMES = {"28": "28x28", "28+": "28x28 +", "56": "56x56", "56+": "56x56 +", "STL-10": "STL-10"}


def load_records(results: Path):
    import pandas as pd

    rows = []
    for path in sorted(Path(results).glob("runs/**/record.json")):
        rec = read_json(path)
        settings = rec.get("settings")
        group = group_settings(settings) if settings else {"legacy record, epochs": rec.get("epochs")}
        # the reproduce dataset (Fashion-MNIST-scale trains with the MNIST-scale protocol):
        # part of the group, so runs on different data are never averaged together
        dataset = (rec.get("sweep_settings") or {}).get("dataset") or rec.get("dataset")
        if dataset != rec.get("dataset"):
            group["reproduce dataset"] = dataset
        rows.append(
            dict(
                dataset=dataset,
                row=rec.get("row", rec.get("model")),
                column=rec.get("column", ""),
                model=rec.get("model"),
                augment=rec.get("augment"),
                realization=rec.get("realization", rec.get("seed")),
                profile=rec.get("profile", ""),
                status=rec.get("status"),
                test_error=rec.get("test_error", math.nan),
                val_acc=rec.get("val_acc", math.nan),
                epochs=rec.get("epochs"),
                seconds_per_epoch=rec.get("seconds_per_epoch", math.nan),
                device=rec.get("device"),
                path=str(path.parent),
                group=group_id(group),
                group_settings=json.dumps(group, sort_keys=True),
                code_version=(settings or {}).get("code_version", "unknown"),
            )
        )
    return pd.DataFrame(rows)


def group_settings(settings: dict) -> dict:
    """The settings that must agree for runs to be averaged: all but seed, data and code version."""
    return {k: v for k, v in settings.items() if k not in ("seed", "data_sha256", "code_version")}


def published(model: str):

    try:
        return get_model_info(model).published
    except ValueError:
        return None


def summarise(df):
    import pandas as pd

    done = df[df.status == "done"]
    out = []
    groups_per_cell = done.groupby(["row", "column"]).group.nunique()
    for (row, column, group), g in done.groupby(["row", "column", "group"], sort=False):
        if groups_per_cell[(row, column)] > 1:
            row = f"{row} [{group}]"
        mean = g.test_error.mean()
        std = g.test_error.std(ddof=1) if len(g) > 1 else 0.0
        # published numbers exist for the paper's datasets only (not for Fashion-MNIST-scale)
        paper_data = set(g.dataset) <= {"mnist-scale", "stl10"}
        pub = published(g.model.iloc[0]) if paper_data and not g.model.iloc[0].startswith("test_") else None
        if pub is not None and column.endswith("+") != g.model.iloc[0].endswith("p"):
            pub = None
        sigma = (mean - pub[0]) / math.sqrt(std**2 + pub[1] ** 2) if pub else math.nan
        out.append(
            dict(
                row=row,
                column=column,
                model=g.model.iloc[0],
                n=len(g),
                ours_mean=mean,
                ours_std=std,
                paper_mean=pub[0] if pub else math.nan,
                paper_std=pub[1] if pub else math.nan,
                diff_sigma=sigma,
                seconds_per_epoch=g.seconds_per_epoch.mean(),
                group=group,
                settings=g.group_settings.iloc[0],
                code_versions=" ".join(sorted(set(g.code_version))),
            )
        )
    return pd.DataFrame(out)


def layout(summary):
    """The paper's layout: one line per row, per column 'ours', 'paper', 'Δ/σ'."""
    import pandas as pd

    columns = [c for c in COLUMN_NAMES if c in set(summary.column)] + sorted(set(summary.column) - set(COLUMN_NAMES))
    lines = []
    for row in dict.fromkeys(summary.row):
        line = {"model": row}
        for c in columns:
            s = summary[(summary.row == row) & (summary.column == c)]
            name = COLUMN_NAMES.get(c, c)
            if s.empty:
                line[f"{name} ours"] = line[f"{name} paper"] = line[f"{name} Δ/σ"] = ""
                continue
            s = s.iloc[0]
            line[f"{name} ours"] = f"{s.ours_mean:.2f} ± {s.ours_std:.2f} (n={s.n})"
            line[f"{name} paper"] = "" if math.isnan(s.paper_mean) else f"{s.paper_mean:.2f} ± {s.paper_std:.2f}"
            line[f"{name} Δ/σ"] = "" if math.isnan(s.diff_sigma) else f"{s.diff_sigma:+.1f}"
        lines.append(line)
    return pd.DataFrame(lines)


def results_yml(df) -> str:
    lines = []
    for r in df[df.status == "done"].itertuples():
        lines.append(
            "- {" + f"dataset: {r.dataset}, model: {r.model}, augment: {str(bool(r.augment)).lower()}, "
            f"realization: {r.realization}, epochs: {r.epochs}, test_error: {r.test_error:.4f}, "
            f"test_acc: {100 - r.test_error:.4f}, val_acc: {100 * r.val_acc:.4f}" + "}"
        )
    return "\n".join(lines) + "\n"


def plot(summary, path: Path, title: str = "MNIST-scale") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    columns = [c for c in COLUMN_NAMES if c in set(summary.column)]
    rows = list(dict.fromkeys(summary.row))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(columns), 3.6))
    width = 0.8 / max(len(rows), 1)
    for i, row in enumerate(rows):
        xs, ys, es, ps = [], [], [], []
        for j, c in enumerate(columns):
            s = summary[(summary.row == row) & (summary.column == c)]
            if s.empty:
                continue
            s = s.iloc[0]
            xs.append(j + i * width)
            ys.append(s.ours_mean)
            es.append(s.ours_std)
            ps.append(s.paper_mean)
        ax.bar(xs, ys, width, yerr=es, label=f"{row} (ours)", capsize=3)
        ax.scatter(xs, ps, marker="_", s=300, color="k", zorder=3, label="paper" if i == 0 else None)
    ax.set_xticks(np.arange(len(columns)) + 0.4 - width / 2)
    ax.set_xticklabels([COLUMN_NAMES[c] for c in columns])
    ax.set_ylabel("test error (%)")
    ax.legend(fontsize=7)
    ax.set_title(f"{title}: ours (bars, ±std) vs published (black)")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def write_tables(results: Path) -> int:

    results = Path(results)
    if not results.is_dir():
        raise MissingInputError(f"--results {results} does not exist (a sweep's results folder, from sesn reproduce)")
    df = load_records(results)
    if df.empty:
        raise MissingInputError(f"--results {results}: no run records under {results}/runs (run sesn reproduce first)")
    summary = summarise(df)
    table = layout(summary)
    failed = df[df.status == "failed"]
    atomic_write_text(results / "table.csv", summary.to_csv(index=False))
    profiles = ", ".join(sorted(set(df.profile) - {""})) or "unknown"
    names = {"mnist-scale": "MNIST-scale", "fashion-mnist-scale": "Fashion-MNIST-scale", "stl10": "STL-10"}
    datasets = [names.get(d, str(d)) for d in dict.fromkeys(df.dataset)]
    published_note = "" if set(df.dataset) <= {"mnist-scale", "stl10"} else " (no published numbers for this dataset)"
    md = [
        f"# {' / '.join(datasets) or 'MNIST-scale'} test error (%): ours vs published{published_note}",
        "",
        f"Generated by `sesn reproduce table --results {results}` from {len(df)} run records (profile: {profiles}). "
        "Δ/σ = (ours − paper) / sqrt(std_ours² + std_paper²).",
        "",
        dataframe_to_markdown(table),
    ]
    if len(failed):
        md += ["", f"{len(failed)} run(s) failed: " + ", ".join(failed.path)]
    split = summary[summary.row.str.contains(r" \[[0-9a-f]{8}\]$", regex=True)]
    if len(split):
        md += ["", "Runs with different settings are not averaged; one line per settings group:"]
        for group, settings in dict(zip(split.group, split.settings)).items():
            md.append(f"- [{group}] {settings}")
    mixed = summary[summary.code_versions.str.contains(" ")]
    if len(mixed):
        md += [
            "",
            "Lines averaged over runs made by different code versions: "
            + ", ".join(f"{r.row} {r.column} ({r.code_versions})" for r in mixed.itertuples()),
        ]
    atomic_write_text(results / "table.md", "\n".join(md) + "\n")
    atomic_write_text(results / "results.yml", results_yml(df))
    if not summary.empty:
        plot(summary, results / "table.png", " / ".join(datasets) or "MNIST-scale")
    print("\n".join(md))
    return 0


def main(argv) -> int:
    p = argparse.ArgumentParser(
        "sesn reproduce table", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results/reproduce/paper"),
        help="a sweep's results folder (default: the paper profile's)",
    )
    return write_tables(p.parse_args(argv).results)
