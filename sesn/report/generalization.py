"""Tables and the plot of the scale-generalization benchmark, from its run records.

Writes into the results folder: ``table.md`` / ``table.csv`` (mean test accuracy ± seed
spread per method and scenario, STIR's published number beside ours where it exists,
size equivariance of the features, time per epoch), ``per_size.csv`` (accuracy per test
size, every run) and ``accuracy_vs_size.png`` (accuracy vs object size per scenario, the
training sizes shaded). Only runs with identical settings (profile, data, everything but
the seed) are averaged; a method with runs of several settings gets one line per setting.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sesn.generalization.measure import split_by_range
from sesn.report.io import atomic_write_text, dataframe_to_markdown, save_figure

# STIR's published mean test accuracy % (mnist domain; its repository's results file),
# by method label of sesn.models.stir
PUBLISHED = {
    ("CNN", 1): 63.4,
    ("CNN", 2): 76.7,
    ("SESN (Hermite B)", 1): 74.7,
    ("SESN (Hermite B)", 2): 84.3,
    ("DISCO", 1): 77.9,
    ("DISCO", 2): 83.6,
    ("pixel pool", 1): 89.3,
    ("pixel pool", 2): 89.1,
    ("image-pyramid ensemble", 1): 92.8,
    ("image-pyramid ensemble", 2): 90.8,
}


def load_records(results: Path):
    import pandas as pd

    from sesn.io import read_json
    from sesn.report.reproduce_table import group_id

    rows, sizes = [], []
    ratios: dict = {}  # model name -> the scale ratio its layers cover (built once per model)
    for path in sorted(Path(results).glob("runs/**/record.json")):
        rec = read_json(path)
        if rec.get("status") != "done":
            continue
        group = {k: v for k, v in rec["settings"].items() if k not in ("seed", "code_version")}
        gid = group_id(group)
        base = dict(
            method=rec["method"],
            model=rec["model"],
            scenario=rec["scenario"],
            seed=rec["seed"],
            profile=rec["profile"],
            group=gid,
        )
        eq = rec["size_equivariance"]
        if rec["model"] not in ratios:
            ratios[rec["model"]] = model_scale_ratio(rec["model"])
        inside, beyond = split_by_range(eq["per_size"], eq["reference_size"], ratios[rec["model"]])
        rows.append(
            dict(
                base,
                test_acc=100 * rec["test_acc"],
                val_acc=100 * rec["val_acc"],
                size_equivariance=eq["mean"],
                scale_ratio=ratios[rec["model"]],
                size_equivariance_inside=inside,
                size_equivariance_beyond=beyond,
                seconds_per_epoch=rec["seconds_per_epoch"],
                epochs_run=rec["epochs_run"],
                params=rec["params"],
                rebuilt=rec["settings"].get("data_rebuilt", True),
                domain=rec["settings"].get("data_domain", "mnist"),
                device=rec.get("device", ""),
                train_sizes=json.dumps([min(rec["train_sizes"]), max(rec["train_sizes"])]),
                group_settings=json.dumps(group, sort_keys=True),
                note=rec.get("profile_note", ""),
            )
        )
        for size, acc in rec["test_acc_per_size"].items():
            eq = rec["size_equivariance"]["per_size"].get(
                str(size), rec["size_equivariance"]["per_size"].get(size, math.nan)
            )
            sizes.append(dict(base, size=int(size), test_acc=100 * acc, size_equivariance=eq))
    return pd.DataFrame(rows), pd.DataFrame(sizes)


def model_scale_ratio(name: str) -> float:
    """:func:`sesn.generalization.measure.scale_ratio` of a benchmark model by name; NaN for
    one this process cannot build (a plug-in not loaded, DISCO's file missing)."""
    from sesn.generalization.measure import scale_ratio
    from sesn.models.stir import stir_model

    try:
        return scale_ratio(stir_model(name))
    except Exception:  # noqa: BLE001  (any failure to build: the ratio is unknown, the table says so)
        return math.nan


def summarise(runs):
    """One line per (method, scenario, settings group): mean ± std over seeds."""
    import pandas as pd

    lines = []
    multi = runs.groupby(["method", "scenario"]).group.nunique()
    for (method, scenario, group), g in runs.groupby(["method", "scenario", "group"], sort=False):
        label = method if multi[(method, scenario)] == 1 else f"{method} [{group}]"
        pub = PUBLISHED.get((method, scenario)) if g.domain.iloc[0] == "mnist" else None
        lines.append(
            dict(
                method=label,
                scenario=scenario,
                n_seeds=len(g),
                test_acc=g.test_acc.mean(),
                test_acc_std=g.test_acc.std(ddof=0),
                stir_published=pub if pub is not None else math.nan,
                size_equivariance=g.size_equivariance.mean(),
                scale_ratio=g.scale_ratio.iloc[0],
                size_equivariance_inside=g.size_equivariance_inside.mean(),
                size_equivariance_beyond=g.size_equivariance_beyond.mean(),
                seconds_per_epoch=g.seconds_per_epoch.mean(),
                epochs_run=g.epochs_run.mean(),
                params=int(g.params.iloc[0]),
                profile=g.profile.iloc[0],
                rebuilt=bool(g.rebuilt.iloc[0]),
                group=group,
            )
        )
    return pd.DataFrame(lines)


def markdown(summary, runs) -> str:
    import pandas as pd

    profiles = sorted(set(runs.profile))
    rebuilt = bool(runs.rebuilt.any())
    md = [
        "# Scale generalization (STIR protocol)",
        "",
        "Generated by `sesn bench generalization` (docs/scale-generalization.md). Profile(s): "
        + ", ".join(profiles)
        + ".",
        "",
    ]
    for note in dict.fromkeys(runs.note):
        md += [f"> {note}", ""]
    if rebuilt:
        md += [
            "Data: the mnist domain **rebuilt** offline by STIR's recipe from the 10,000 MNIST test digits, not STIR's "
            "own file: STIR's published numbers are beside ours for orientation only (a different data set, and "
            "STIR trained far longer, over 50 seeds, with a tuned learning rate per method).",
            "",
        ]
    md += [
        "Accuracy: top-1 % on the test sizes (mean ± std over seeds). "
        "Size equivariance: Delta = ||F_b - resize(F_a)||² / ||F_b||² "
        "of the model's own features on the object's box, from the middle training size a "
        "to every test size b, averaged "
        "(0 = perfectly equivariant); split into the test sizes inside the model's scale range (max(b/a, a/b) "
        "within the ratio of the largest to the smallest scale its layers cover, column 'range') and beyond "
        "it, where a model has no channel for the size and Delta says nothing about equivariance (a CNN's "
        "range is 1: every other size is beyond). s/epoch: training time per epoch on the run's device.",
        "",
    ]
    for scenario in sorted(set(summary.scenario)):
        s = summary[summary.scenario == scenario]
        train = json.loads(runs[runs.scenario == scenario].train_sizes.iloc[0])
        t = pd.DataFrame(
            {
                "method": s.method,
                "test acc % (ours)": [
                    f"{m:.1f} ± {sd:.1f} (n={n})" for m, sd, n in zip(s.test_acc, s.test_acc_std, s.n_seeds)
                ],
                "STIR published" + (" (other data)" if rebuilt else ""): [
                    f"{p:.1f}" if p == p else "" for p in s.stir_published
                ],
                "size equivariance Delta": [f"{v:.3f}" for v in s.size_equivariance],
                "range": ["" if v != v else f"{v:.2g}" for v in s.scale_ratio],
                "Delta inside range": ["–" if v != v else f"{v:.3f}" for v in s.size_equivariance_inside],
                "Delta beyond range": ["–" if v != v else f"{v:.3f}" for v in s.size_equivariance_beyond],
                "s/epoch": [f"{v:.1f}" for v in s.seconds_per_epoch],
                "epochs": [f"{v:.0f}" for v in s.epochs_run],
                "params": s.params,
            }
        )
        md += [f"## Scenario {scenario}: train on {train[0]}-{train[1]} px", "", dataframe_to_markdown(t)]
    devices = ", ".join(sorted(set(runs.device)))
    md += [f"Device(s): {devices}."]
    return "\n".join(md) + "\n"


def plot(sizes, runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted(set(sizes.scenario))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.2 * len(scenarios), 3.8), squeeze=False)
    for ax, scenario in zip(axes[0], scenarios):
        s = sizes[sizes.scenario == scenario]
        train = json.loads(runs[runs.scenario == scenario].train_sizes.iloc[0])
        ax.axvspan(train[0] - 0.5, train[1] + 0.5, color="0.85", label="training sizes")
        step = int(min((b - a for a, b in zip(sorted(set(s["size"])), sorted(set(s["size"]))[1:])), default=1))
        for method, g in s.groupby("method", sort=False):
            curve = g.groupby("size").test_acc.mean()
            xs, ys = [], []
            for size, acc in curve.items():
                if xs and size - xs[-1] > step:  # a gap in the test sizes (the training range): break the line
                    xs.append(float("nan"))
                    ys.append(float("nan"))
                xs.append(size)
                ys.append(acc)
            ax.plot(xs, ys, marker=".", label=method)
        ax.set_xlim(16, 65)
        ax.set_ylim(0, 100)
        ax.set_xlabel("object size (px)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"scenario {scenario}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Scale generalization, profile(s) {', '.join(sorted(set(runs.profile)))}", fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def write_tables(results: Path) -> Path | None:
    results = Path(results)
    runs, sizes = load_records(results)
    if runs.empty:
        print(f"no finished runs under {results}/runs")
        return None
    summary = summarise(runs)
    atomic_write_text(results / "table.csv", summary.to_csv(index=False))
    atomic_write_text(results / "per_size.csv", sizes.to_csv(index=False))
    md = markdown(summary, runs)
    atomic_write_text(results / "table.md", md)
    plot(sizes, runs, results / "accuracy_vs_size.png")
    print(md)
    print(f"wrote {results}/table.md, table.csv, per_size.csv, accuracy_vs_size.png")
    return results / "table.md"
