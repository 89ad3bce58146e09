"""Time every scale-generalization model's forward and training step (batch 16 at 64 px,
1 thread: how the ``cpu`` profile's shards run), interleaving two source trees of this
project in separate processes, model by model, so that both see the same machine state:

    git worktree add /tmp/before <commit>
    python scripts/compare_method_steps.py --before /tmp/before --after . --rounds 2 \\
        --out results/speed/stir-methods-steps

Each cell is the best of ``--rounds`` processes (a process: median of 5 after two warm-ups).
Writes ``OUT.csv`` and ``OUT.md`` (ms, ratios to the STIR CNN of the same tree, the
training-step time of one ``cpu``-profile scenario that these imply) and ``OUT.jsonl``
(every process's raw result).
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

ONE = r"""
import json, sys, time, torch
from sesn.allocator import configure_cpu_allocator
configure_cpu_allocator()
torch.set_num_threads(1)
import sesn, sesn.models as models
name = sys.argv[1]
torch.manual_seed(0)
model = models.get_model(name)
model.train()
x = torch.randn(16, *models.get_model_info(name).input_shape)
def step():
    for q in model.parameters():
        q.grad = None
    model(x).square().mean().backward()
def fwd():
    with torch.no_grad():
        model(x)
out = {"model": name, "source": sesn.__file__}
for f, k in ((fwd, "forward_ms"), (step, "step_ms")):
    f(); f()
    ts = []
    for _ in range(5):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    out[k] = 1000 * sorted(ts)[2]
print(json.dumps(out))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, required=True, help="source tree of the 'before' code (a git worktree)")
    p.add_argument("--after", type=Path, default=Path("."), help="source tree of the 'after' code")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--models", nargs="*", default=None, help="default: the cpu profile's models")
    p.add_argument("--out", type=Path, required=True, help="output stem (OUT.csv, OUT.md, OUT.jsonl)")
    p.add_argument("--tables-only", action="store_true", help="rebuild OUT.csv / OUT.md from an existing OUT.jsonl")
    args = p.parse_args()
    from sesn.generalization.profiles import PROFILES

    names = args.models or list(PROFILES["cpu"].models)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.tables_only:
        rows = [json.loads(line) for line in args.out.with_suffix(".jsonl").read_text().splitlines() if line]
    else:
        rows = measure(args, names)
    trees = {t: next(r["commit"] for r in rows if r["tree"] == t) for t in ("before", "after")}
    write_tables(rows, names, args.out, max(r["round"] for r in rows) + 1, trees)


def describe(tree: Path) -> str:
    """The tree's commit (and whether it had uncommitted changes)."""
    git = ["git", "-C", str(tree)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "sesn"], capture_output=True, text=True).stdout.strip()
    return f"{head or tree}{' + uncommitted changes under sesn/' if dirty else ''}"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    import platform

    return platform.processor() or "unknown CPU"


def measure(args, names) -> list[dict]:
    rows = []
    with open(args.out.with_suffix(".jsonl"), "w") as raw:
        for r in range(args.rounds):
            for name in names:
                for tree, src in (("before", args.before), ("after", args.after)):
                    env = {"PYTHONPATH": str(src.resolve())}
                    res = subprocess.run([sys.executable, "-c", ONE, name], capture_output=True, text=True,
                                         env={**__import__("os").environ, **env}, cwd="/", check=True)  # fmt: skip
                    d = json.loads(res.stdout.strip().splitlines()[-1])
                    d.update(tree=tree, round=r, commit=describe(src))
                    raw.write(json.dumps(d) + "\n")
                    raw.flush()
                    rows.append(d)
                    print(f"round {r} {tree:6s} {name:20s} step {d['step_ms']:8.1f} ms", flush=True)
    return rows


def write_tables(rows, names, out: Path, rounds: int, trees: dict) -> None:
    import pandas as pd

    from sesn.generalization.profiles import PROFILES
    from sesn.markdown import dataframe_to_markdown

    profile = PROFILES["cpu"]
    df = pd.DataFrame(rows)
    best = df.groupby(["model", "tree"])[["forward_ms", "step_ms"]].min().unstack("tree").loc[names]
    cnn = best.loc["stir_cnn"]
    table = pd.DataFrame({
        "model": names,
        "forward before (ms)": best[("forward_ms", "before")].round(1).values,
        "forward after (ms)": best[("forward_ms", "after")].round(1).values,
        "step before (ms)": best[("step_ms", "before")].round(1).values,
        "step after (ms)": best[("step_ms", "after")].round(1).values,
        "step / CNN before": (best[("step_ms", "before")] / cnn[("step_ms", "before")]).round(2).values,
        "step / CNN after": (best[("step_ms", "after")] / cnn[("step_ms", "after")]).round(2).values,
        "forward / CNN after": (best[("forward_ms", "after")] / cnn[("forward_ms", "after")]).round(2).values,
    })  # fmt: skip
    table.to_csv(out.with_suffix(".csv"), index=False)
    # the cpu profile: per scenario, every model x learning rate x seed, max_epochs x steps per epoch
    per_epoch = -(-profile.train_instances * 10 * profile.num_train_sizes // profile.batch_size)
    steps = len(profile.lrs) * len(profile.seeds) * profile.max_epochs * per_epoch
    hours = {t: float(best[("step_ms", t)].sum()) * steps / 3.6e6 for t in ("before", "after")}
    md = [
        "# Training step of every scale-generalization model, before / after",
        "",
        f"Batch 16 at 64 px, 1 thread, best of {rounds} processes per cell (each the median of 5 after "
        "two warm-ups), the two trees interleaved model by model (`scripts/compare_method_steps.py`). "
        f"Before: {trees['before']}; after: {trees['after']}; CPU: {cpu_name()}.",
        "",
        dataframe_to_markdown(table.astype(str)),
        f"Training steps of one `cpu`-profile scenario ({len(names)} models x {len(profile.lrs)} learning rates x "
        f"{len(profile.seeds)} seeds x {profile.max_epochs} epochs x {per_epoch} steps), from these step times "
        f"(evaluation and the size-equivariance measure not included): {hours['before']:.2f} h before, "
        f"{hours['after']:.2f} h after, on one core.",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
