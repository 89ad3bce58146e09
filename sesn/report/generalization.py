"""Tables and the plot of the scale-generalization benchmark, from its run records.

Writes into the results folder: ``table.md`` / ``table.csv`` (per method and scenario: the
learning rate chosen by STIR's rule, mean test accuracy with its 95 % confidence interval
over seeds, whether it differs significantly from the scenario's best and from the plain
CNN, STIR's published number beside ours where it exists, size equivariance of the
features, time per epoch),
``significance.csv`` (every pair of methods in a scenario: Welch's t-test), ``ordering.csv``
(per scenario: how our ordering of the methods agrees with STIR's published one, Spearman's
rho and Kendall's tau over the methods both have), ``per_size.csv``
(accuracy per test size, every run) and ``accuracy_vs_size.png`` (accuracy vs object size per
scenario, the training sizes shaded). Only runs with identical settings (profile, data,
everything but the seed and the learning rate) are compared; a method with runs of several
settings gets one line per setting.

Learning rate (STIR's rule): of a method's runs in one scenario and settings group, the rate
whose runs have the best *median validation* accuracy over seeds is kept (ties: the first in
the grid's order), and only its runs are reported. The test set never enters the choice.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from sesn.generalization.measure import scale_ratio, split_by_range
from sesn.generalization.profiles import select_lr
from sesn.io import read_json
from sesn.models.method import method as registration
from sesn.models.method import methods
from sesn.report.artefacts import atomic_write_text, dataframe_to_markdown, save_figure
from sesn.train.record import group_id


def load_records(results: Path):
    import pandas as pd

    rows, sizes = [], []
    ratios: dict = {}  # model name -> the scale ratio its layers cover (built once per model)
    for path in sorted(Path(results).glob("runs/**/record.json")):
        rec = read_json(path)
        if rec.get("status") != "done":
            continue
        # the learning rate is chosen within a group (select_lr): not part of it
        group = {k: v for k, v in rec["settings"].items() if k not in ("seed", "code_version", "lr")}
        lr = rec.get("lr", rec["settings"].get("lr"))
        gid = group_id(group)
        base = dict(
            method=rec["method"],
            model=rec["model"],
            scenario=rec["scenario"],
            seed=rec["seed"],
            lr=float(lr),
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
                code_version=" ".join(run_code_versions(rec)),
                train_sizes=json.dumps([min(rec["train_sizes"]), max(rec["train_sizes"])]),
                train_sizes_used=json.dumps(sorted(rec["train_sizes"])),
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


def run_code_versions(rec: dict) -> list[str]:
    """Every code version that trained the run: the record's, and each epoch's where the
    history names it. Epochs without one in a history where others have one were trained
    before the epochs named their version (a run resumed across that update): "unknown"."""
    history = rec.get("history", [])
    named = {h["code_version"] for h in history if "code_version" in h}
    unnamed = bool(named) and any("code_version" not in h for h in history)
    return sorted({rec["settings"].get("code_version", "unknown")} | named | ({"unknown"} if unnamed else set()))


def model_scale_ratio(name: str) -> float:
    """The scale ratio of a benchmark model by name: its registration's where it declares one,
    else :func:`sesn.generalization.measure.scale_ratio` of the model built; NaN for one this
    process cannot build (a plug-in not loaded, DISCO's file missing)."""
    try:
        m = registration(name)
        return float(m.scale_ratio) if m.scale_ratio is not None else scale_ratio(m.build())
    except Exception:  # noqa: BLE001  (any failure to build: the ratio is unknown, the table says so)
        return math.nan


def published_accuracy(model: str, scenario: int) -> float | None:
    """STIR's published mean test accuracy % of a benchmark model's method in ``scenario``
    (from its registration; None where STIR has none or the model is not registered here)."""
    try:
        return registration(model).published_accuracy(scenario)
    except ValueError:
        return None


def interval(values, level: float = 0.95) -> float:
    """Half-width of the two-sided Student-t confidence interval of the mean (NaN for n < 2)."""
    from scipy import stats

    n = len(values)
    if n < 2:
        return math.nan
    sd = float(values.std(ddof=1))
    return float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)


def welch_p(a, b) -> float:
    """Two-sided p-value of Welch's t-test of equal means (NaN when either has < 2 runs; 1 when
    both are constant and equal)."""
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return math.nan
    if float(a.std()) == 0 and float(b.std()) == 0:
        return 1.0 if float(a.mean()) == float(b.mean()) else 0.0
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def summarise(runs):
    """One line per (method, scenario, settings group): the chosen learning rate's runs, mean
    ± 95 % interval over seeds; and each line's comparison with the scenario's best line."""
    import pandas as pd

    lines, chosen = [], []
    multi = runs.groupby(["method", "scenario"]).group.nunique()
    for (method, scenario, group), g in runs.groupby(["method", "scenario", "group"], sort=False):
        label = method if multi[(method, scenario)] == 1 else f"{method} [{group}]"
        pub = published_accuracy(g.model.iloc[0], scenario) if g.domain.iloc[0] == "mnist" else None
        lr, lr_stats = select_lr(g)
        grid = json.loads(g.group_settings.iloc[0]).get("lrs") or [lr]
        # the seeds each rate of the grid was trained with (the rule compares rates on the same seeds)
        seed_sets = {frozenset(g[g.lr == lr].seed) for lr in lr_stats}
        g = g[g.lr == lr]
        chosen.append(g.assign(label=label))
        lines.append(
            dict(
                method=label,
                base_method=method,
                scenario=scenario,
                lr=lr,
                lr_median_val=json.dumps({f"{k:g}": round(v, 2) for k, (v, _) in lr_stats.items()}),
                # the rule saw every rate of the grid with the same seeds (the same set, not
                # only as many)
                lr_selection_complete=len(lr_stats) == len(grid) and len(seed_sets) == 1,
                n_seeds=len(g),
                test_acc=g.test_acc.mean(),
                test_acc_std=g.test_acc.std(ddof=1) if len(g) > 1 else math.nan,
                test_acc_ci95=interval(g.test_acc),
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
                # the code the line's runs ran (a sweep spread over sessions may span several)
                code_versions=" ".join(sorted({v for run in g.code_version for v in run.split()})),
                # the settings every method shares (the group's minus the model): what makes
                # lines comparable across methods (ordering_agreement)
                family=_family(g.group_settings.iloc[0]),
            )
        )
    summary = pd.DataFrame(lines)
    kept = pd.concat(chosen) if chosen else runs.iloc[:0]
    pairs = significance(summary, kept)
    summary["vs_best_p"], summary["vs_best"] = math.nan, ""
    for scenario, s in summary.groupby("scenario"):
        best = s.test_acc.idxmax()
        for i in s.index:
            if i == best:
                summary.loc[i, "vs_best"] = "best"
                continue
            hit = pairs[(pairs.scenario == scenario) & (pairs.a == s.method[best]) & (pairs.b == s.method[i])]
            p = float(hit.p_holm.iloc[0]) if len(hit) else math.nan
            summary.loc[i, "vs_best_p"] = p
            summary.loc[i, "vs_best"] = "n/a" if p != p else ("below" if p < 0.05 else "not distinguishable")
    vs_reference(summary, kept)
    return summary, pairs


# the pre-declared reference of the many-to-one comparison: the plain CNN that every method of
# the field claims to generalise better than
REFERENCE = "CNN"


def holm(ps):
    """Holm's step-down adjustment of a Series of p-values (one family; NaN stays NaN and is
    not counted in the family's size)."""
    adjusted = ps.copy() * math.nan
    valid = ps[ps == ps].sort_values(kind="stable")
    m, running = len(valid), 0.0
    for rank, (i, p) in enumerate(valid.items()):
        running = max(running, min(1.0, (m - rank) * p))  # monotone step-down
        adjusted[i] = running
    return adjusted


def vs_reference(summary, kept, reference: str = REFERENCE):
    """Each line against the plain CNN of its scenario and settings (``family``), a family of
    comparisons declared before any result: Welch's two-sided t-test, Holm-adjusted over the
    scenario's k - 1 comparisons with the CNN (far fewer than all k(k-1)/2 pairs, so the
    question "better than a CNN?" keeps its power). Adds ``vs_cnn_p`` and ``vs_cnn``: "above" /
    "below" (significant at 0.05 after adjustment), "not distinguishable", "reference" for the
    CNN itself, "n/a" without exactly one CNN line or with < 2 seeds on either side."""
    import pandas as pd

    summary["vs_cnn_p"], summary["vs_cnn"] = math.nan, "n/a"
    for (scenario, _), s in summary.groupby(["scenario", "family"], sort=False):
        ref = s[s.base_method == reference]
        if len(ref) != 1:
            continue
        r = ref.index[0]
        summary.loc[r, "vs_cnn"] = "reference"

        acc = {i: kept[(kept.scenario == scenario) & (kept.label == summary.method[i])].test_acc for i in s.index}
        raw = pd.Series({i: welch_p(acc[i], acc[r]) for i in s.index if i != r}, dtype=float)
        for i, p in holm(raw).items():
            summary.loc[i, "vs_cnn_p"] = p
            if p == p:
                above = summary.test_acc[i] > summary.test_acc[r]
                summary.loc[i, "vs_cnn"] = ("above" if above else "below") if p < 0.05 else "not distinguishable"


def significance(summary, kept):
    """Every pair of lines of a scenario: difference of mean test accuracy, Welch's two-sided
    p-value, and the p-value Holm-adjusted over the scenario's pairs (the family that one
    table reads), with ``significant`` at 0.05 after adjustment."""
    import pandas as pd

    rows = []
    for scenario, s in summary.groupby("scenario"):
        order = s.sort_values("test_acc", ascending=False).method.tolist()
        acc = {m: kept[(kept.scenario == scenario) & (kept.label == m)].test_acc for m in order}
        for i, a in enumerate(order):
            for b in order[i + 1 :]:
                rows.append(dict(scenario=scenario, a=a, b=b, diff=acc[a].mean() - acc[b].mean(),
                                 p=welch_p(acc[a], acc[b])))  # fmt: skip
    pairs = pd.DataFrame(rows, columns=["scenario", "a", "b", "diff", "p"])
    pairs["p_holm"] = math.nan
    for _, s in pairs.groupby("scenario"):
        pairs.loc[s.index, "p_holm"] = holm(s.p)
    pairs["significant"] = pairs.p_holm < 0.05
    return pairs


def _family(group_settings: str) -> str:

    return group_id({k: v for k, v in json.loads(group_settings).items() if k != "model"})


def ordering_agreement(summary):
    """Per scenario and shared settings (``family``: a run's settings but its model, seed and
    learning rate): rank agreement of our mean test accuracies with STIR's
    published means, over the lines that have both (Spearman's rho and Kendall's tau with their
    p-values; NaN with fewer than 3 such lines). ``methods``: how many of STIR's methods the
    statistic covers (of ``published``). ``final``: every one of STIR's methods is there, each
    learning rate chosen with every rate of the grid seen on the same seeds, and every line has
    the same number of seeds, at least 3; otherwise the statistic is provisional."""
    import pandas as pd
    from scipy import stats

    rows = []
    for (scenario, family), s in summary.groupby(["scenario", "family"], sort=False):
        both = s[s.stir_published == s.stir_published]
        published = sum(1 for m in methods() if m.published_accuracy(scenario) is not None)
        seeds = set(both.n_seeds)
        row = dict(scenario=scenario, family=family, methods=len(both), published=published,
                   min_seeds=min(seeds) if seeds else 0,
                   final=bool(len(both) == published and both.lr_selection_complete.all() and len(seeds) == 1
                              and min(seeds) >= 3),
                   spearman_rho=math.nan, spearman_p=math.nan, kendall_tau=math.nan, kendall_p=math.nan)  # fmt: skip
        if len(both) >= 3:
            rho = stats.spearmanr(both.test_acc, both.stir_published)
            tau = stats.kendalltau(both.test_acc, both.stir_published)
            row.update(spearman_rho=float(rho.statistic), spearman_p=float(rho.pvalue),
                       kendall_tau=float(tau.statistic), kendall_p=float(tau.pvalue))  # fmt: skip
        rows.append(row)
    cols = ["scenario", "family", "methods", "published", "min_seeds", "final", "spearman_rho", "spearman_p",
            "kendall_tau", "kendall_p"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols)


def markdown(summary, runs) -> str:
    import pandas as pd

    profiles = sorted(set(runs.profile))
    rebuilt = bool(runs.rebuilt.any())
    md = [
        "# Scale generalization (STIR protocol)",
        "",
        "Generated by `sesn generalization` (docs/scale-generalization.md). Profile(s): " + ", ".join(profiles) + ".",
        "",
    ]
    for note in dict.fromkeys(runs.note):
        md += [f"> {note}", ""]
    if rebuilt:
        md += [
            "Data: the mnist domain **rebuilt** offline by STIR's recipe from the 10,000 MNIST test digits, not STIR's "
            "own file: STIR's published numbers are beside ours for orientation only (a different data set, and "
            "STIR trained far longer, 25 seeds per method in its published results, with a tuned "
            "learning rate per method).",
            "",
        ]
    md += [
        "Accuracy: top-1 % on the test sizes, mean ± half-width of the 95 % Student-t interval over seeds "
        "(n = seeds), of the learning rate chosen by STIR's rule (column 'lr': the best median validation "
        "accuracy over seeds; '*' after it: not every rate of the grid had the same seeds yet, the choice may "
        "change). 'vs best': Welch's t-test against the scenario's best line, Holm-adjusted over all pairs of "
        "the scenario (every pair in significance.csv): 'below' = significantly lower at 0.05, "
        "'not distinguishable' = not. 'vs CNN': the comparison declared in advance, each method against the "
        "plain CNN (Welch, Holm-adjusted over the scenario's comparisons with the CNN only): 'above' / 'below' = "
        "significantly higher / lower at 0.05. "
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
        s = summary[summary.scenario == scenario].sort_values("test_acc", ascending=False)
        train = json.loads(runs[runs.scenario == scenario].train_sizes.iloc[0])
        t = pd.DataFrame(
            {
                "method": s.method,
                "lr": [f"{lr:g}" + ("" if done else "*") for lr, done in zip(s.lr, s.lr_selection_complete)],
                "test acc % (ours)": [
                    f"{m:.1f}" + (f" ± {ci:.1f}" if ci == ci else "") + f" (n={n})"
                    for m, ci, n in zip(s.test_acc, s.test_acc_ci95, s.n_seeds)
                ],
                "vs best": [v if p != p else f"{v} (p={p:.2g})" for v, p in zip(s.vs_best, s.vs_best_p)],
                "vs CNN": [v if p != p else f"{v} (p={p:.2g})" for v, p in zip(s.vs_cnn, s.vs_cnn_p)],
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
        used = json.loads(runs[runs.scenario == scenario].train_sizes_used.iloc[0])
        sizes_note = "" if len(used) == train[1] - train[0] + 1 else f" (sizes {', '.join(map(str, used))})"
        md += [f"## Scenario {scenario}: train on {train[0]}-{train[1]} px{sizes_note}", "", dataframe_to_markdown(t)]
        agreement = ordering_agreement(summary[summary.scenario == scenario])
        for _, agree in agreement.iterrows():
            if agree.spearman_rho != agree.spearman_rho:
                continue
            md += [
                "Ordering vs STIR's published means"
                + (f" (settings {agree.family})" if len(agreement) > 1 else "")
                + f", over {agree.methods} of STIR's {agree.published} methods: Spearman's rho "
                f"{agree.spearman_rho:.2f} (p={agree.spearman_p:.2g}), Kendall's tau {agree.kendall_tau:.2f} "
                f"(p={agree.kendall_p:.2g})"
                + (
                    ""
                    if agree.final
                    else "; provisional: a method is missing, a learning-rate choice is incomplete "
                    "or the methods' seeds differ or are fewer than 3"
                )
                + ".",
                "",
            ]
    devices = ", ".join(sorted(set(runs.device)))
    md += [f"Device(s): {devices}."]
    versions = sorted({v for run in runs.code_version for v in run.split()})
    md += [
        "",
        f"Code version(s) of the runs: {', '.join(versions)}"
        + (
            " (a sweep resumed over sessions; the lines' own versions are in table.csv, column code_versions)."
            if len(versions) > 1
            else "."
        ),
    ]
    return "\n".join(md) + "\n"


def curve_across_training_range(points, train_range) -> tuple[list[float], list[float]]:
    """(xs, ys) of a per-size accuracy curve with a break (NaN) where two consecutive test
    sizes lie on either side of the training range (scenario 2), and nowhere else: test
    sizes spread unevenly over a range stay one line."""
    lo, hi = train_range
    xs, ys = [], []
    for size, acc in sorted(points):
        if xs and xs[-1] < lo and size > hi:
            xs.append(float("nan"))
            ys.append(float("nan"))
        xs.append(size)
        ys.append(acc)
    return xs, ys


def plot(sizes, runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted(set(sizes.scenario))
    fig, axes = plt.subplots(1, len(scenarios), figsize=(5.2 * len(scenarios) + 2.6, 3.8), squeeze=False)
    styles = ["-", "--", ":", "-."]  # with the 10 default colours: up to 40 methods told apart
    for ax, scenario in zip(axes[0], scenarios):
        s = sizes[sizes.scenario == scenario]
        train = json.loads(runs[runs.scenario == scenario].train_sizes.iloc[0])
        ax.axvspan(train[0] - 0.5, train[1] + 0.5, color="0.85", label="training sizes")
        for i, (method, g) in enumerate(s.groupby("method", sort=False)):
            xs, ys = curve_across_training_range(g.groupby("size").test_acc.mean().items(), train)
            ax.plot(xs, ys, marker=".", linestyle=styles[(i // 10) % len(styles)], label=method)
        ax.set_xlim(16, 65)
        ax.set_ylim(0, 100)
        ax.set_xlabel("object size (px)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"scenario {scenario}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)
    fig.suptitle(f"Scale generalization, profile(s) {', '.join(sorted(set(runs.profile)))}", fontsize=10)
    save_figure(fig, path)
    plt.close(fig)


def write_tables(results: Path) -> Path | None:
    results = Path(results)
    runs, sizes = load_records(results)
    if runs.empty:
        print(f"no finished runs under {results}/runs")
        return None
    summary, pairs = summarise(runs)
    atomic_write_text(results / "table.csv", summary.to_csv(index=False))
    atomic_write_text(results / "significance.csv", pairs.to_csv(index=False))
    atomic_write_text(results / "ordering.csv", ordering_agreement(summary).to_csv(index=False))
    atomic_write_text(results / "per_size.csv", sizes.to_csv(index=False))
    md = markdown(summary, runs)
    atomic_write_text(results / "table.md", md)
    # the curves of the runs the table reports: each method's chosen learning rate
    keys = summary[["base_method", "scenario", "group", "lr"]].rename(columns={"base_method": "method"})
    plot(sizes.merge(keys, on=["method", "scenario", "group", "lr"]), runs, results / "accuracy_vs_size.png")
    print(md)
    print(f"wrote {results}/table.md, table.csv, significance.csv, ordering.csv, per_size.csv, accuracy_vs_size.png")
    return results / "table.md"
