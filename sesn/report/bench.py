"""Benchmark report: turn ``pytest bench --benchmark-json out.json`` into a Markdown/CSV
table and a PNG.

    sesn report bench out.json [--out bench/results] [--name NAME]

Per row: median latency, ratio to the group's baseline (plain conv / CNN / WRN-16-8),
FLOPs (corrected counter, one call), FLOP ratio, achieved GFLOP/s and memory. Files are
named after what determines the numbers: device, precision and torch version, unless
``--name`` is given.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from sesn.errors import InputError, MissingInputError
from sesn.io import read_json
from sesn.report.artefacts import atomic_write_text, dataframe_to_markdown, save_figure


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn report bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    p.add_argument("json", type=Path, help="output of pytest bench --benchmark-json")
    p.add_argument("--out", type=Path, default=Path("bench/results"), help="output folder")
    p.add_argument("--name", default=None, help="file stem (default: from device, precision, torch)")
    return p


# what determines the timings besides the code; one report never mixes values of these
SETTINGS_COLUMNS = ("device", "torch", "allocator", "quick")


def load(path: Path):
    import pandas as pd

    if Path(path).is_dir():
        raise InputError(f"{path} is a folder; give the pytest-benchmark JSON file inside it (--benchmark-json)")
    try:
        data = read_json(Path(path))
    except FileNotFoundError:
        raise MissingInputError(f"{path}: not found; run `pytest bench --benchmark-json {path}` first") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not a pytest-benchmark JSON file ({e})") from None
    rows = []
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        stats = b.get("stats") or {}
        rows.append(
            dict(
                group=b.get("group"),
                name=b.get("name"),
                case=info.get("case"),
                variant=info.get("variant"),
                role=info.get("role"),
                pass_=info.get("pass"),
                precision=info.get("precision", "fp32"),
                batch=info.get("batch"),
                params=info.get("params"),
                median_ms=1000 * stats["median"] if "median" in stats else float("nan"),
                min_ms=1000 * stats["min"] if "min" in stats else float("nan"),
                rounds=stats.get("rounds"),
                gflop=info.get("flops", 0) / 1e9,
                memory_mb=info.get("peak_memory_bytes", 0) / 2**20,
                device=info.get("device"),
                cpu_flags=info.get("cpu_flags", ""),
                auto_picks="; ".join(info.get("auto_picks", [])),
                memory_saving=info.get("memory_saving", "off"),
                activation_mb=(info.get("activation_bytes") or 0) / 2**20,
                cuda_max_allocated_mb=(info.get("cuda_max_allocated_bytes") or 0) / 2**20,
                meta_peak_mb=(info.get("meta_peak_bytes") or 0) / 2**20,
                memory_kind=info.get("memory_kind", ""),
                model=info.get("model"),
                torch=info.get("torch"),
                allocator=info.get("allocator", "not recorded"),
                quick=info.get("quick"),
            )
        )
    if not rows:
        raise InputError(f"{path}: holds no benchmarks")
    df = pd.DataFrame(rows)
    mixed = {c: sorted(map(str, df[c].unique())) for c in SETTINGS_COLUMNS if df[c].nunique(dropna=False) > 1}
    if mixed:  # one table is one run's settings: ratios across machines or allocators would mislead
        raise InputError(f"{path}: rows were measured with different settings: {mixed}")
    base = df[(df.role == "baseline") & (df.memory_saving == "off") & (df.precision == "fp32")].set_index("group")
    df["latency_ratio"] = [
        r.median_ms / base.loc[r.group, "median_ms"] if r.group in base.index else float("nan") for r in df.itertuples()
    ]
    df["flop_ratio"] = [
        r.gflop / base.loc[r.group, "gflop"] if r.group in base.index and base.loc[r.group, "gflop"] else float("nan")
        for r in df.itertuples()
    ]
    df["gflop_per_s"] = df.gflop / (df.median_ms / 1000)
    # efficiency: the row's FLOP rate over its baseline's (1 = SESN's FLOPs run at the CNN's rate)
    df["rate_ratio"] = df.flop_ratio / df.latency_ratio
    df["memory_ratio"] = [
        r.memory_mb / base.loc[r.group, "memory_mb"] if r.group in base.index else float("nan") for r in df.itertuples()
    ]
    return df, data


SUMMARY_VARIANTS = ("auto", "method")  # the rows a user gets by default: auto dispatch, or a method's one path


def efficiency_summary(df):
    """Per family (benchmark group) and pass: the default rows (``auto`` or a method's
    layer, fp32, no memory saving) against the group's baseline. time / baseline and
    FLOPs / baseline; the floor those imply (the time the row would take at the baseline's
    FLOP rate: baseline time x FLOP ratio) and how far above it the row is (time / floor,
    i.e. baseline rate / row rate)."""
    import pandas as pd

    rows = []
    timed = df[(df.case != "memory") & df.latency_ratio.notna() & df.flop_ratio.notna()]
    default = timed[timed.variant.isin(SUMMARY_VARIANTS) & (timed.memory_saving == "off")]
    for group, sub in default.groupby("group", sort=False):
        base = timed[(timed.group == group) & (timed.role == "baseline") & (timed.memory_saving == "off")]
        base = base[base.precision == "fp32"]
        if base.empty:
            continue
        b = base.iloc[0]
        for prec, rows_p in sub.groupby("precision", sort=False):
            rows.append(dict(group=group, precision=prec, rows=len(rows_p), baseline=b["name"],
                             baseline_ms=b.median_ms, baseline_gflop_per_s=b.gflop_per_s,
                             time_min=rows_p.latency_ratio.min(), time_max=rows_p.latency_ratio.max(),
                             flop_min=rows_p.flop_ratio.min(), flop_max=rows_p.flop_ratio.max(),
                             floor_ms_min=(b.median_ms * rows_p.flop_ratio).min(),
                             floor_ms_max=(b.median_ms * rows_p.flop_ratio).max(),
                             above_floor_min=(rows_p.latency_ratio / rows_p.flop_ratio).min(),
                             above_floor_max=(rows_p.latency_ratio / rows_p.flop_ratio).max(),
                             rate_min=rows_p.rate_ratio.min(), rate_max=rows_p.rate_ratio.max(),
                             slowest=rows_p.loc[rows_p.latency_ratio.idxmax(), "name"]))  # fmt: skip
    return pd.DataFrame(rows)


def _span(lo, hi, fmt="{:.2f}"):
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def memory_table(df):
    """The training-memory rows (``case == "memory"``): peak and kept-for-backward memory at
    the paper batch, and the peak over the family's baseline (CNN / WRN-16-8)."""
    mem = df[df.case == "memory"]
    return mem.assign(
        peak_gib=mem.memory_mb / 1024,
        activation_gib=mem.activation_mb / 1024,
        cuda_gib=mem.cuda_max_allocated_mb / 1024,
        meta_gib=mem.meta_peak_mb / 1024,
    )


def memory_vs_time(df):
    """Memory rows joined with the training-step time of the same model, path and level
    (the ``*-fwdbwd`` groups, fp32): one row per (model, path, level) found in both."""
    import pandas as pd

    mem = memory_table(df)
    times = df[(df.case == "model") & (df.pass_ == "fwdbwd") & (df.precision == "fp32")]
    rows = []
    for r in mem[mem.precision == "fp32"].itertuples():
        t = times[(times.model == r.model) & (times.variant == r.variant) & (times.memory_saving == r.memory_saving)]
        if len(t) == 1:
            t = t.iloc[0]
            rows.append(dict(model=r.model, variant=r.variant, memory_saving=r.memory_saving, peak_gib=r.peak_gib,
                             memory_batch=r.batch, step_ms=t.median_ms, step_ratio=t.latency_ratio,
                             time_batch=t.batch, time_group=t.group))  # fmt: skip
    return pd.DataFrame(rows)


def plot_memory(joined, device: str, path: Path) -> None:
    """Peak training memory (paper batch) against training-step time (the bench batch), one
    marker per model and path, memory-saving levels joined by a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 6))
    for model, sub in joined.groupby("model", sort=False):
        line = ax.plot(sub.step_ms, sub.peak_gib, marker="o", linestyle="none", label=model)[0]
        for r in sub.itertuples():
            tag = r.variant + ("" if r.memory_saving == "off" else f"+{r.memory_saving}")
            ax.annotate(tag, (r.step_ms, r.peak_gib), fontsize=6, xytext=(3, 2), textcoords="offset points")
        levels = sub[sub.variant.isin(["auto", "baseline"])].sort_values("step_ms")
        if len(levels) > 1:
            ax.plot(levels.step_ms, levels.peak_gib, color=line.get_color(), linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step, median ms (batch of the time benchmark)")
    ax.set_ylabel("peak training memory, GiB (paper batch)")
    ax.axhline(12, color="tab:red", linewidth=0.6, linestyle="--")
    ax.text(ax.get_xlim()[0], 12, " 12 GiB", color="tab:red", fontsize=7, va="bottom")
    ax.legend(fontsize=6, ncol=2)
    ax.set_title(f"Training memory vs training-step time — {device}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def stem_for(df) -> str:
    df = df[df.case != "memory"] if (df.case != "memory").any() else df
    device = str(df.device.iloc[0])
    precision = "+".join(sorted(set(df.precision)))
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{device}-{precision}-torch{df.torch.iloc[0]}").strip("-").lower()
    return slug


def plot(df, path: Path) -> None:
    df = df[df.case != "memory"]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(df.group))
    fig, axes = plt.subplots(len(groups), 1, figsize=(9, 1.0 + 0.42 * len(df)), squeeze=False)
    for ax, g in zip(axes[:, 0], groups):
        sub = df[df.group == g]
        colors = ["tab:gray" if r == "baseline" else "tab:blue" for r in sub.role]
        ax.barh(sub.name, sub.median_ms, color=colors)
        for y, (ms, ratio) in enumerate(zip(sub.median_ms, sub.latency_ratio)):
            ax.text(ms, y, f" {ms:.0f} ms ({ratio:.1f}x)", va="center", fontsize=7)
        ax.set_title(g, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.invert_yaxis()
    axes[-1, 0].set_xlabel("median latency (ms); gray = baseline, (ratio to baseline)")
    fig.suptitle(f"SESN vs baselines — {df.device.iloc[0]}, torch {df.torch.iloc[0]}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


PATHS = ("naive", "direct", "fft", "separable")  # the fixed compute modes auto chooses among
AUTO_SLOWER = 1.15  # auto is "measurably slower" beyond this ratio to the fastest fixed path


def auto_vs_paths(df):
    """Per (group, model or layer) with an ``auto`` row and fixed-path rows: auto's median over
    the fastest fixed path's, and whether that is measurably slower (> AUTO_SLOWER: the spread
    of rows running the same path in one run was up to 9 %, docs/speed.md)."""
    import pandas as pd

    rows = []
    for (group, case), sub in df.assign(key=df.name.str.split("/").str[0]).groupby(["group", "key"], sort=False):
        auto = sub[sub.variant == "auto"]
        fixed = sub[sub.variant.isin(PATHS)]
        if len(auto) != 1 or fixed.empty:
            continue
        best = fixed.loc[fixed.median_ms.idxmin()]
        ratio = float(auto.median_ms.iloc[0] / best.median_ms)
        rows.append(dict(group=group, case=case, auto_ms=float(auto.median_ms.iloc[0]), fastest=best.variant,
                         fastest_ms=float(best.median_ms), ratio=ratio, slower=ratio > AUTO_SLOWER))  # fmt: skip
    return pd.DataFrame(rows)


def main(args) -> int:
    import pandas as pd

    df, data = load(args.json)
    stem = args.name or stem_for(df)
    out: Path = args.out
    df = df.sort_values(
        ["group", "role", "name"],
        key=lambda c: c.map({"baseline": 0, "ses": 1, "method": 2}).fillna(3) if c.name == "role" else c,
        kind="stable",
    )
    timed = df[df.case != "memory"]
    cols = [
        "group",
        "name",
        "batch",
        "median_ms",
        "latency_ratio",
        "gflop",
        "flop_ratio",
        "gflop_per_s",
        "rate_ratio",
        "memory_mb",
        "params",
    ]
    table = timed[cols].copy()
    for col, fmt in {
        "median_ms": "{:.1f}",
        "latency_ratio": "{:.2f}",
        "gflop": "{:.2f}",
        "flop_ratio": "{:.2f}",
        "gflop_per_s": "{:.0f}",
        "rate_ratio": "{:.2f}",
        "memory_mb": "{:.0f}",
    }.items():
        table[col] = [fmt.format(v) for v in table[col]]
    table = table.rename(
        columns={
            "median_ms": "median (ms)",
            "latency_ratio": "latency / baseline",
            "gflop": "GFLOP",
            "flop_ratio": "FLOP / baseline",
            "gflop_per_s": "GFLOP/s",
            "rate_ratio": "GFLOP/s / baseline",
            "memory_mb": "memory (MiB)",
        }
    )
    atomic_write_text(out / f"{stem}.csv", df.to_csv(index=False))
    md = [
        f"# Benchmarks: {df.device.iloc[0]}, torch {df.torch.iloc[0]}",
        "",
        f"Generated by `sesn report bench {args.json}` from `pytest bench --benchmark-json`; "
        f"{data.get('machine_info', {}).get('cpu', {}).get('brand_raw', '')} "
        f"({data.get('datetime', '')}). Latency: median over the rounds; FLOPs: one call, corrected "
        "`FlopCounterMode` (sesn.flops); memory column of this table: CUDA max allocated, or process RSS on CPU "
        "(training memory proper: the next section).",
        "",
        f"Machine: {df.device.iloc[0]}; CPU flags: {df.cpu_flags.iloc[0] or 'n/a'}; "
        f"CPU memory allocator: {df.allocator.iloc[0]} (sesn.allocator).",
        "",
        dataframe_to_markdown(table),
    ]
    summary = efficiency_summary(df)
    if len(summary):
        shown = pd.DataFrame(
            {
                "family (group)": summary.group,
                "precision": summary.precision,
                "rows": summary.rows,
                "baseline": [f"{n} ({ms:.1f} ms, {r:.0f} GFLOP/s)" for n, ms, r in
                             zip(summary.baseline, summary.baseline_ms, summary.baseline_gflop_per_s)],
                "time / baseline": [_span(a, b) for a, b in zip(summary.time_min, summary.time_max)],
                "FLOPs / baseline": [_span(a, b) for a, b in zip(summary.flop_min, summary.flop_max)],
                "floor (ms)": [_span(a, b, "{:.1f}") for a, b in zip(summary.floor_ms_min, summary.floor_ms_max)],
                "time / floor": [_span(a, b, "{:.1f}")
                                 for a, b in zip(summary.above_floor_min, summary.above_floor_max)],
                "GFLOP/s / baseline": [_span(a, b) for a, b in zip(summary.rate_min, summary.rate_max)],
                "slowest": summary.slowest,
            }
        )  # fmt: skip
        atomic_write_text(out / f"{stem}-efficiency.csv", summary.to_csv(index=False))
        md += ["", "## Efficiency per family", "",
               "The rows a user gets by default (`auto` dispatch or a method's layer; no memory saving) against "
               "the family's baseline. Floor: the time the row would take if its FLOPs ran at the baseline's "
               "FLOP rate (baseline time x FLOP ratio); time / floor = baseline GFLOP/s over the row's. A "
               "range spans the family's rows.", "",
               dataframe_to_markdown(shown)]  # fmt: skip
    mem = memory_table(df)
    if len(mem):
        kind = "; ".join(sorted(set(mem.memory_kind)))
        shown = mem.assign(
            **{
                "peak (GiB)": [f"{v:.3g}" for v in mem.peak_gib],
                "kept for backward (GiB)": [f"{v:.3g}" for v in mem.activation_gib],
                "peak / baseline": [f"{v:.2f}" for v in mem.memory_ratio],
            }
        )
        cols_mem = ["group", "name", "batch", "peak (GiB)", "kept for backward (GiB)", "peak / baseline"]
        if (mem.cuda_gib > 0).any():
            shown["CUDA max allocated (GiB)"] = [f"{v:.2f}" for v in mem.cuda_gib]
            cols_mem.append("CUDA max allocated (GiB)")
            # the same step's tensors tracked on meta (the CPU tables' figure): what the GPU's allocator adds
            shown["meta peak (GiB)"] = [f"{v:.2f}" if v > 0 else "" for v in mem.meta_gib]
            cols_mem.append("meta peak (GiB)")
        md += ["", "## Training memory", "",
               f"One training step (forward, loss, backward, optimizer step) at each family's paper batch; "
               f"`sesn.memory.training_memory`, {kind}. Peak: the most memory tensors held at once "
               "(parameters, gradients, optimizer state, batch, activations, temporaries); kept for backward: "
               "held at the end of the forward pass beyond the parameters, optimizer state and batch. "
               "`+layers` / `+blocks`: memory-saving levels; `-amp`: mixed precision (on meta: the model in "
               "float16). `auto` rows: the paths auto took (on meta: its cost model, under its memory rule).", "",
               dataframe_to_markdown(shown[cols_mem])]  # fmt: skip
        joined = memory_vs_time(df)
        if len(joined):
            plot_memory(joined, str(df.device.iloc[0]), out / f"{stem}-memory.png")
            md += ["", f"Memory against training-step time: [{stem}-memory.png]({stem}-memory.png) "
                   f"(memory at the paper batch, time at the time benchmark's batch).", "",
                   dataframe_to_markdown(joined.assign(
                       peak_gib=[f"{v:.2f}" for v in joined.peak_gib], step_ms=[f"{v:.0f}" for v in joined.step_ms],
                       step_ratio=[f"{v:.2f}" for v in joined.step_ratio])[
                       ["model", "variant", "memory_saving", "memory_batch", "peak_gib", "time_batch", "step_ms",
                        "step_ratio"]].rename(columns={"step_ratio": "step / baseline"}))]  # fmt: skip
    picks = df[df.auto_picks.astype(str) != ""][["group", "name", "auto_picks"]]
    if len(picks):
        md += ["", "Paths `auto` measured and picked (per layer, input shape):", ""]
        md += [f"* {r.group} {r.name}: {r.auto_picks}" for r in picks.itertuples()]
    check = auto_vs_paths(df)
    if len(check):
        n_slow = int(check.slower.sum())
        shown = check.assign(
            auto_ms=[f"{v:.1f}" for v in check.auto_ms],
            fastest_ms=[f"{v:.1f}" for v in check.fastest_ms],
            **{"auto / fastest": [f"{r:.2f}" for r in check.ratio]},
        )
        md += ["", f"`auto` vs the fastest fixed path of the same case ({n_slow} of {len(check)} cases measurably "
               f"slower, i.e. above {AUTO_SLOWER}x):", "",
               dataframe_to_markdown(shown[["group", "case", "auto_ms", "fastest", "fastest_ms",
                                            "auto / fastest"]])]  # fmt: skip
    atomic_write_text(out / f"{stem}.md", "\n".join(md))
    plot(df, out / f"{stem}.png")
    print(dataframe_to_markdown(table))
    print(f"wrote {out}/{stem}.md, .csv, .png")
    return 0
