"""Reproduce the paper's tables: sweep models x columns x realizations, then aggregate.

    sesn reproduce [--profile paper|quick|smoke] [--dataset mnist-scale|fashion-mnist-scale|stl10]
                   [--models ...] [--columns 28 28+ 56 56+] [--realizations 0 1 ...]
                   [--both-augmentations] [--shard k/n] [--results DIR] [--device cpu|cuda]
    sesn reproduce table [--results DIR]

Profiles (MNIST-scale):

* ``paper``: the protocol of docs/protocols.md — realizations 0-5 of the full MNIST-scale
  (``datasets/mnist_scale/mnist_seed<k>``, made by ``sesn data mnist-scale``), 60 epochs,
  Adam 0.01, x0.1 at 20 and 40, batch 128, all four columns, rows CNN, SESN scalar/vector
  and the baselines (SiCNN, SI-ConvNet, DSS, SEVF scalar/vector, SS-CNN);
* ``quick``: a reduced protocol for a 2-core CPU in well under an hour: one realization
  built offline from the 10,000 real MNIST test digits with splits 6,000/1,000/3,000,
  columns 28 and 28+, rows CNN / SESN scalar / SESN vector (add baselines with
  ``--models``, e.g. the optimised-basis rows ``mnist_disco_scalar_28``), 6 epochs
  (lr x0.1 at 3 and 5), batch 128;
* ``smoke``: seconds, for CI: tiny registered models, splits 256/64/256, 1 epoch.

``--dataset fashion-mnist-scale`` runs the same protocol, models and profiles on
Fashion-MNIST-scale: the MNIST-scale recipe (rescale by 0.3-1, paper splits
10,000/2,000/50,000) applied to the 70,000 Fashion-MNIST images, which Debian ships
(``apt-get install dataset-fashion-mnist``), so the full-size paper profile runs offline. Its
realizations are built on first use (``<data-root>/mnist_scale/fashion-mnist_seed<k>``,
reduced profiles under the results folder), its default results folder is
``results/reproduce/fashion-mnist-scale/<profile>``, and its table has no published column
(the paper reports MNIST-scale only).

Each profile writes to its own folder (default ``results/reproduce/<profile>``). Each run
writes ``<results>/runs/<dataset>/<model>[+aug]/<sweep id>/r<k>/record.json`` (and its
checkpoint), where the sweep id names the settings that determine the result (profile,
epochs, lr schedule, batch size, determinism): re-running skips finished runs with the same
settings, resumes interrupted ones, and puts a run with changed settings in a new folder.
``--shard k/n`` runs every n-th run starting at k (0-based), so a Slurm job array can split
a sweep: ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``; shards (or whole sweeps)
started together share the data build (a file lock; the others wait and reuse it), and a
run held by another live process is skipped and reported at the end. The aggregation reads
every record in the results folder and averages only runs with identical settings.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sesn.data import mnist_scale as ms
from sesn.data.sources import load_digits
from sesn.devices import resolve_device
from sesn.errors import InputError, MissingInputError
from sesn.io import check_output_folder, exclusive_lock
from sesn.models import get_model_info
from sesn.models.registry import table_models
from sesn.sweep import FAILED, run_sweep, shard  # noqa: F401  (shard: re-exported)
from sesn.train import train
from sesn.train.config import DEFAULTS
from sesn.train.record import code_version, settings_id

COLUMNS = ("28", "28+", "56", "56+")
# reproduce dataset -> the source images of its MNIST-scale recipe (None: STL-10)
DATASETS = {"mnist-scale": "mnist", "fashion-mnist-scale": "fashion-mnist", "stl10": None}
# The rows of the tables (which model fills which row and column, and which profiles sweep
# it by default) are registry metadata: ModelInfo.row, .reproduce_columns and .profiles
# (sesn.models.registry). A model registered by a user's module with that metadata is part
# of the tables like the paper's.


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    realizations: tuple
    columns: tuple
    epochs: int
    lr_steps: tuple
    splits: dict | None  # None: the paper's splits from the full data


PROFILES = {
    "paper": Profile("paper", tuple(range(6)), COLUMNS, 60, (20, 40), None),
    "quick": Profile("quick", (0,), ("28", "28+"), 6, (3, 5), {"train": 6000, "val": 1000, "test": 3000}),
    "smoke": Profile("smoke", (0,), ("28", "28+"), 1, (), {"train": 256, "val": 64, "test": 256}),
}


@dataclasses.dataclass(frozen=True)
class Run:
    dataset: str
    row: str
    column: str
    model: str
    augment: bool
    realization: int

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.model}{'+aug' if self.augment else ''}/r{self.realization}"

    def folder(self, results: Path, sweep: str) -> Path:
        return (
            results
            / "runs"
            / self.dataset
            / f"{self.model}{'+aug' if self.augment else ''}"
            / sweep
            / f"r{self.realization}"
        )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def get_args_parser(add_help=True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn reproduce", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help
    )
    p.add_argument("--profile", choices=sorted(PROFILES), default="paper")
    p.add_argument(
        "--dataset",
        choices=list(DATASETS),
        default="mnist-scale",
        help="mnist-scale (the paper's), fashion-mnist-scale (same recipe on Fashion-MNIST), stl10",
    )
    p.add_argument("--models", nargs="*", default=None, help="only these registered models")
    p.add_argument("--columns", nargs="*", default=None, choices=COLUMNS, help="only these columns")
    p.add_argument("--realizations", type=int, nargs="*", default=None)
    p.add_argument(
        "--both-augmentations",
        action="store_true",
        help="train every model with and without the + augmentation, as the reference did",
    )
    p.add_argument("--epochs", type=positive_int, default=None, help="override the profile's epochs")
    p.add_argument("--shard", default="0/1", help="k/n: run every n-th run starting at k")
    p.add_argument("--results", type=Path, default=None, help="results folder (default: results/reproduce/<profile>)")
    p.add_argument("--data-root", type=Path, default=Path("datasets"))
    p.add_argument("--device", default=None)
    p.add_argument("--deterministic", action="store_true")
    p.add_argument(
        "--memory-saving",
        default="off",
        metavar="{off,layers,blocks,blocks:K}",
        help="activation memory saving for every run (same results; see sesn train --help)",
    )
    p.add_argument(
        "--fit-memory",
        default=None,
        metavar="SIZE",
        help="per run, the cheapest --memory-saving level whose training peak fits SIZE (e.g. 12GB)",
    )
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only; a setting of the runs)")
    p.add_argument(
        "--restart",
        action="store_true",
        help="runs whose checkpoint was made with other settings start over (default: they are reported and skipped)",
    )
    p.add_argument("--no-table", action="store_true", help="do not aggregate at the end")
    p.add_argument("--dry-run", action="store_true", help="list the runs of this shard and exit")
    return p


def table_cells(dataset: str, profile: str | None) -> list[tuple[str, str, str]]:
    """(row, column, model) of every registered model placed in ``dataset``'s table; with
    ``profile``, only the models of that profile's default sweep (registry order)."""

    return [(info.row, col, info.name) for info in table_models(dataset, profile) for col in info.reproduce_columns]


def plan(args, profile: Profile) -> list[Run]:
    check_models(args.models, "stl10" if args.dataset == "stl10" else "mnist-scale")
    bad = [r for r in args.realizations or () if r < 0]
    if bad:
        raise InputError(f"--realizations must be seeds >= 0, got {' '.join(map(str, bad))}")
    runs = []
    if args.dataset == "stl10":
        for row, col, model in table_cells("stl10", None if args.models else "paper"):
            for r in args.realizations or (0,):
                runs.append(Run("stl10", row, col, model, False, r))
    else:  # MNIST-scale and Fashion-MNIST-scale: the same models and columns
        columns = args.columns or profile.columns
        # with --models any model placed in the table may be asked for by name
        for row, col, model in table_cells("mnist-scale", None if args.models else profile.name):
            if col not in columns:
                continue
            plus = col.endswith("+")
            augments = (False, True) if args.both_augmentations else (plus,)
            for aug in augments:
                for r in args.realizations if args.realizations is not None else profile.realizations:
                    runs.append(
                        Run(
                            args.dataset,
                            row,
                            col if aug == plus else col + (" (+aug)" if aug else " (no aug)"),
                            model,
                            aug,
                            r,
                        )
                    )
    if args.models:
        runs = [r for r in runs if r.model in args.models]
    seen, unique = set(), []
    for r in runs:  # the CNN serves two columns with the same (model, augment)
        if r.key not in seen:
            seen.add(r.key)
            unique.append(r)
    return unique


def check_models(names, dataset: str) -> None:
    """Every --models name must be registered and placed in ``dataset``'s table."""

    placed = {model for _, _, model in table_cells(dataset, None)}
    missing = []
    for name in names or ():
        get_model_info(name)  # ValueError naming the closest registered models
        if name not in placed:
            missing.append(name)
    if missing:
        raise InputError(
            f"--models {' '.join(missing)}: no place in the {dataset} table (its registry entry has no row and "
            f"reproduce_columns for {dataset}); placed models: {', '.join(sorted(placed))}"
        )


def sweep_settings(args, profile: "Profile") -> dict:
    """The sweep-level settings that determine a run's result (with the run's model,
    augmentation, seed and data); their hash names the run folder."""

    epochs = args.epochs or profile.epochs
    d = DEFAULTS[train_dataset(args.dataset)]
    steps = list(d["lr_steps"]) if args.dataset == "stl10" else [s for s in profile.lr_steps if s < epochs]
    return {"profile": profile.name, "dataset": args.dataset,
            "epochs": epochs if args.dataset != "stl10" else d["epochs"],
            "lr": d["lr"], "lr_steps": steps, "lr_gamma": d["lr_gamma"], "batch_size": d["batch_size"],
            "optimizer": d["optimizer"], "weight_decay": d["weight_decay"],
            "deterministic": bool(args.deterministic)}  # fmt: skip


def sweep_id(settings: dict) -> str:

    return f"{settings['profile']}-e{settings['epochs']}-{settings_id(settings)[:8]}"


def train_dataset(dataset: str) -> str:
    """The training protocol (``sesn train --dataset``) of a reproduce dataset."""
    return "stl10" if dataset == "stl10" else "mnist-scale"


def realization_folder(args, profile: Profile, r: int) -> Path:
    """The data of realization r for this profile; built offline when the profile allows
    (the reduced profiles from the digits at hand; Fashion-MNIST-scale in full, from the
    Debian package's files)."""

    source = DATASETS[args.dataset]
    if profile.splits is None:
        folder = args.data_root / "mnist_scale" / ms.realization_name(source, r, False)
        if source != "mnist" and not (folder / "manifest.json").exists():
            return _build_realization(args, profile, r, source, args.data_root, None)
        if not (folder / "manifest.json").exists():
            raise MissingInputError(
                f"{folder}: MNIST-scale realization {r} not found. The paper profile needs the full MNIST "
                f"(70,000 digits): put the IDX files in {args.data_root}/raw/mnist (or pass --download once) and run "
                f"`sesn data mnist-scale --seeds {' '.join(map(str, profile.realizations))}`. "
                "Offline, use --profile quick (real digits, reduced protocol) or smoke."
            )
        return folder
    folder = args.results / "data" / f"{source}_{profile.name}_seed{r}"
    return _build_realization(args, profile, r, source, folder, dict(profile.splits))


def _build_realization(args, profile: Profile, r: int, source: str, folder: Path, splits: dict | None) -> Path:
    """Realization r from ``source``'s images into ``folder`` (``splits`` None: the paper's,
    from all 70,000 images); shards started together share it (a file lock: one builds, the
    others wait and reuse it)."""

    reduced = splits is not None
    final = folder / "mnist_scale" / ms.realization_name(source, r, reduced)
    if (final / "manifest.json").exists():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(folder / f".build-{source}-{r}.lock" if not reduced else folder / "build.lock"):
        if (final / "manifest.json").exists():
            return final
        ms.remove_stale_temporaries(final.parent)
        try:
            digits = load_digits(source, None, False, args.data_root)
        except FileNotFoundError as e:
            raise MissingInputError(
                f"the {profile.name} profile of {args.dataset} needs its images offline: {e}"
            ) from None
        need = sum(splits.values()) if reduced else ms.PAPER_SOURCE_SIZE
        if len(digits.labels) < need:
            raise InputError(
                f"the {profile.name} profile of {args.dataset} needs {need} images, found {len(digits.labels)} in "
                f"{digits.folder}"
            )
        print(
            f"building the {profile.name} realization {r} of {args.dataset} from {len(digits.labels)} images in "
            f"{digits.folder}: " + (f"splits {splits} (reduced protocol)" if reduced else "the paper's splits")
        )
        return ms.generate(digits, r, folder, splits=splits, reduced=reduced, progress=not reduced, overwrite=True)


def default_results(dataset: str, profile: str) -> Path:
    """``results/reproduce/<profile>`` (MNIST-scale and STL-10, as before); other datasets
    under ``results/reproduce/<dataset>/<profile>``, so tables never mix datasets."""
    base = Path("results/reproduce")
    return base / profile if dataset in ("mnist-scale", "stl10") else base / dataset / profile


def main(args) -> int:

    code_version()  # fixed now, at start: what this process runs
    device = resolve_device(args.device)  # before any data is built
    profile = PROFILES[args.profile]
    if args.results is None:
        args.results = default_results(args.dataset, profile.name)
    runs = shard(plan(args, profile), args.shard)
    settings = sweep_settings(args, profile)
    sweep = sweep_id(settings)
    if args.dry_run:
        for r in runs:
            print(r.folder(args.results, sweep))
        return 0
    check_output_folder(Path(args.results), "--results")  # before any data is built
    epochs = settings["epochs"]

    def expected(run: Run) -> dict:  # what a finished record of this run holds
        return {"sweep_settings": settings, "model": run.model, "augment": run.augment, "seed": run.realization}

    def train_one(run: Run, out: Path) -> None:
        meta = {
            "row": run.row,
            "column": run.column,
            "realization": run.realization,
            "profile": profile.name,
            "sweep": sweep,
            "sweep_settings": settings,
        }
        config = train.TrainConfig(
            model=run.model,
            dataset=train_dataset(run.dataset),
            data=args.data_root if run.dataset == "stl10" else realization_folder(args, profile, run.realization),
            output_dir=out,
            seed=run.realization,
            device=device,
            augment=run.augment,
            deterministic=args.deterministic,
            restart=args.restart,
            meta=meta,
            amp=args.amp,
            memory_saving=args.memory_saving,
            fit_memory=args.fit_memory,
        )
        if run.dataset != "stl10":  # the profile's schedule; STL-10 keeps the protocol's
            config.epochs, config.lr_steps = epochs, list(settings["lr_steps"])
        train.run(config)

    run_sweep(
        runs, args.results, sweep, expected, train_one, restart=args.restart,
        describe=lambda run: f"{run.key} ({run.row}, column {run.column}, sweep {sweep})",
        not_run_errors=[(train.TrainingDiverged, FAILED)],
    )  # fmt: skip
    if not args.no_table and any(Path(args.results).glob("runs/**/record.json")):
        from sesn.report import reproduce_table

        reproduce_table.write_tables(args.results)
    return 0
