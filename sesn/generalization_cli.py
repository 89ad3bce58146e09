"""``sesn generalization``: train on some object sizes, test on others (STIR protocol).

    sesn generalization [--profile reduced|cpu|full|smoke] [--models ...] [--scenarios 1 2]
                              [--seeds 0 1] [--lrs 0.01 0.001] [--data FILE.npz] [--root datasets]
                              [--results DIR] [--shard k/n] [--restart] [--device cpu|cuda]
    sesn generalization table [--results DIR]

For each (scenario, model, learning rate, seed): train with Adam and early stopping on
validation accuracy (the validation images have the training sizes), keep the best-validation
weights, then measure top-1 accuracy per test size, the size equivariance of the model's own
features (Delta from the middle training size to each test size) and time per epoch. Data:
STIR's own npz file with ``--data`` (any of its four domains), else the mnist domain rebuilt
offline from local MNIST digits (``sesn data stir``; built on first use).

Each profile has a learning-rate grid; the table keeps, per method and scenario, the rate
with the best median validation accuracy over seeds (STIR's rule) and reports mean test
accuracy with its 95 % interval over seeds, which methods are significantly below the
scenario's best (Welch, Holm-adjusted; every pair in ``significance.csv``) and which are
significantly above or below the plain CNN (Holm over the comparisons with the CNN).

Profiles: ``reduced`` (the default here: about 30 minutes on 2 CPU cores, 5 models,
scenarios 1-2, little data, few epochs, one seed: said in every output), ``cpu`` (16 models: every method
of STIR's table, the later scale-channel families, SESN with basis D and the SESN pyramid
ensemble; scenarios 1-4, 3 seeds, learning rates 1e-2 and 1e-3, little data: hours per
scenario on a 2-core CPU, measured in docs/scale-generalization.md; run it as two 1-thread
shards, ``OMP_NUM_THREADS=1 ... --shard 0/2`` and ``1/2``; it resumes; with
``SESN_DISPATCH_CACHE=file.json`` a restarted shard reuses its layers' measured path choices),
``full`` (STIR's protocol, on a GPU: every model, all data, up to 200 epochs, 25 seeds),
``smoke`` (CI); a profile trains the methods tagged with its name
(``sesn.models.method.register_method``, a plug-in's too). ``--models`` takes registered
``stir_*`` names, any model registered with ``dataset="stir"``, or the name of a T -> T method
in the layer catalogue (``sesn.models.method_layers``, e.g. one a plug-in registered).

Each run writes ``<results>/runs/scenario<k>/<model>/<profile>-<hash>/lr<lr>/seed<s>/record.json``
(and ``checkpoint.pt``): re-running skips finished runs, resumes interrupted ones, refuses a
checkpoint made with other settings (``--restart`` starts over). ``--shard k/n`` runs every
n-th run from k (a Slurm job array: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``).
Results default to ``results/generalization/<profile>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sesn.data import stir
from sesn.data.stir_build import ensure_stir_mnist
from sesn.devices import resolve_device
from sesn.generalization.profiles import PROFILES
from sesn.generalization.run import Run, train_and_evaluate
from sesn.io import check_output_folder
from sesn.models.method import stir_model
from sesn.report import generalization as generalization_report
from sesn.sweep import run_sweep, shard
from sesn.train.record import code_version, settings_id


def get_args_parser(add_help=True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn generalization",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="reduced")
    p.add_argument("--models", nargs="*", default=None, help="models or catalogue methods (default: the profile's)")
    p.add_argument("--scenarios", type=int, nargs="*", default=None, choices=[1, 2, 3, 4])
    p.add_argument("--seeds", type=int, nargs="*", default=None)
    p.add_argument(
        "--lrs", type=float, nargs="*", default=None, help="learning rates to train (default: the profile's grid)"
    )
    p.add_argument(
        "--data", type=Path, default=None, help="a STIR npz file (default: the rebuilt mnist domain under --root)"
    )
    p.add_argument(
        "--root", type=Path, default=Path("datasets"), help="data root for the rebuilt set (default: datasets)"
    )
    p.add_argument(
        "--results", type=Path, default=None, help="results folder (default: results/generalization/<profile>)"
    )
    p.add_argument("--shard", default="0/1", help="k/n: run every n-th run starting at k")
    p.add_argument(
        "--restart", action="store_true", help="discard checkpoints and records of the planned runs and train again"
    )
    p.add_argument("--device", default=None)
    p.add_argument("--no-table", action="store_true", help="do not aggregate at the end")
    p.add_argument("--dry-run", action="store_true", help="list this shard's runs and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def plan(args, profile):

    models = args.models if args.models else profile.models
    for name in models:
        stir_model(name)  # ValueError naming the known models
    scenarios = args.scenarios or profile.scenarios
    seeds = args.seeds if args.seeds is not None else profile.seeds
    lrs = args.lrs or profile.lrs
    # seed-major within a scenario: a partial sweep holds whole seeds of every method and rate
    return [Run(m, s, seed, lr) for s in scenarios for seed in seeds for m in models for lr in lrs]


def load_data(args):

    if args.data is not None:
        return stir.load_stir(args.data)
    # the rebuilt mnist domain with STIR's seed and instances: built once (a lock), then reused
    # after its sha256 is checked
    npz, _ = ensure_stir_mnist(args.root, seed=42, instances=50)
    return stir.load_stir(npz)


def sweep_id(profile, data) -> str:

    return f"{profile.name}-{settings_id({**profile.settings(), 'data_sha256': data.sha256})[:8]}"


def main(args) -> int:
    import torch

    code_version()  # fixed now, at start: what this process runs
    device = torch.device(resolve_device(args.device))  # before the data is built
    profile = PROFILES[args.profile]
    if args.results is None:
        args.results = Path("results/generalization") / profile.name
    runs = shard(plan(args, profile), args.shard)
    if not args.dry_run:
        check_output_folder(Path(args.results), "--results")  # before the data is built
    data = load_data(args)
    sweep = sweep_id(profile, data)
    if args.dry_run:
        for r in runs:
            print(r.folder(args.results, sweep))
        return 0
    print(f"profile {profile.name}: {profile.note}")
    print(
        f"data: {data.path} ({data.domain}, {'rebuilt' if data.rebuilt else 'STIR file'}, "
        f"sha256 {data.sha256[:12]}), {len(runs)} run(s), device {device}"
    )
    progress = not args.quiet and sys.stderr.isatty()

    def train_one(run, out: Path) -> None:
        rec = train_and_evaluate(run, profile, data, out, device, {"sweep": sweep}, args.restart, progress)
        print(f"{run.key}: test {100 * rec['test_acc']:.1f} % (val {100 * rec['val_acc']:.1f} %), "
              f"Delta {rec['size_equivariance']['mean']:.3f}, "
              f"{rec['seconds_per_epoch']:.1f} s/epoch x {rec['epochs_run']}", flush=True)  # fmt: skip

    # a finished record of the same run: same sweep (profile settings + data) and run identity
    run_sweep(runs, args.results, sweep, lambda run: {"sweep": sweep, "model": run.model, "scenario": run.scenario,
              "seed": run.seed, "lr": run.lr}, train_one, restart=args.restart)  # fmt: skip
    if not args.no_table:
        from sesn.report import generalization as generalization_report

        generalization_report.write_tables(args.results)
    return 0


def table_main(argv) -> int:
    p = argparse.ArgumentParser(
        "sesn generalization table",
        description="aggregate finished runs into table.md/csv, per_size.csv, accuracy_vs_size.png",
    )
    p.add_argument("--results", type=Path, default=Path("results/generalization/reduced"))
    args = p.parse_args(argv)

    return 0 if generalization_report.write_tables(args.results) else 1


def cli(argv) -> int:
    if argv[:1] == ["table"]:
        return table_main(argv[1:])
    return main(get_args_parser().parse_args(argv))
