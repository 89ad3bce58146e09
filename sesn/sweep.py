"""The one sweep runner: a planned list of runs, sharded, each trained or skipped by the
state of its record, with the runs that were not trained reported by reason.

Used by ``sesn reproduce`` (the paper's tables) and ``sesn generalization`` (STIR's
protocol); each supplies its runs (objects with ``key`` and ``folder(results, sweep)``),
what a finished record of the same run must hold, and the function that trains one run.
Shards (``k/n``: every n-th run from k) partition a plan, so any scheduler (Slurm job
arrays, several shells) can run a sweep in parallel; a run held by another live process
is skipped and reported, and re-running a sweep skips the runs already finished with the
same settings.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Protocol

from sesn.errors import InputError
from sesn.io import read_json
from sesn.train.checkpoint import RunInProgress, SettingsMismatch


class SweepRun(Protocol):
    """What the runner needs of a run (``sesn.reproduce.Run``, ``sesn.generalization.run.Run``):
    a key for the summary and its folder in a results tree for a sweep id."""

    model: str

    @property
    def key(self) -> str: ...

    def folder(self, results: Path, sweep: str) -> Path: ...


# why a planned run was not trained (the order the summary lists them in)
FAILED = "failed (recorded)"
HELD = "held by another live process"
OTHER_SETTINGS = "made with other settings (--restart starts them over)"


def shard(runs: list, spec: str) -> list:
    """Shard ``k/n`` of ``runs``: every n-th run starting at k."""
    try:
        k, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like k/n (e.g. 0/4), got {spec!r}") from None
    if not (n >= 1 and 0 <= k < n):
        raise InputError(f"--shard k/n needs 0 <= k < n, got {spec!r}")
    return runs[k::n]


def record_state(record: Path, expected: dict) -> str:
    """``"absent"`` (no finished record: train or resume the run), ``"done"`` (finished, and
    every item of ``expected`` matches: skip it) or ``"other"`` (finished with something else,
    e.g. a folder reused by hand: report it, never overwrite it silently)."""
    if not record.exists():
        return "absent"

    rec = read_json(record)
    if rec.get("status") != "done":
        return "absent"
    return "done" if all(rec.get(k) == v for k, v in expected.items()) else "other"


@dataclasses.dataclass
class Summary:
    trained: int = 0
    skipped: int = 0
    not_run: dict = dataclasses.field(default_factory=lambda: {FAILED: [], HELD: [], OTHER_SETTINGS: []})
    seconds: float = 0.0

    def report(self) -> None:
        for reason, keys in self.not_run.items():
            if keys:
                print(f"{len(keys)} run(s) {reason}: {', '.join(keys)}")
        print(f"sweep: {self.trained} run(s) trained, {self.skipped} already finished, {self.seconds:.0f} s")


def run_sweep(
    runs: list[SweepRun],
    results: Path,
    sweep: str,
    expected: Callable[[SweepRun], dict],
    train: Callable[[SweepRun, Path], None],
    restart: bool = False,
    describe: Callable[[SweepRun], str] | None = None,
    not_run_errors: Iterable[tuple[type, str]] = (),
) -> Summary:
    """Train every run of ``runs`` whose record (``<folder>/record.json``) is not finished
    with ``expected(run)``; ``restart`` trains them all again. ``train(run, folder)`` trains
    one run (resuming its checkpoint); an exception listed in ``not_run_errors`` as
    ``(type, reason)`` skips the run under that reason (a run another process holds, a
    diverged run, a checkpoint made with other settings), any other propagates."""

    errors = [(RunInProgress, HELD), (SettingsMismatch, OTHER_SETTINGS), *not_run_errors]
    summary = Summary()
    t0 = time.perf_counter()
    for i, run in enumerate(runs, 1):
        out = run.folder(results, sweep)
        rec = out / "record.json"
        state = "absent" if restart else record_state(rec, expected(run))
        if state == "done":
            summary.skipped += 1
            continue
        if state == "other":
            print(f"skipping {run.key}: {rec} holds a finished run with other settings", file=sys.stderr)
            summary.not_run[OTHER_SETTINGS].append(run.key)
            continue
        print(f"=== [{i}/{len(runs)}] {describe(run) if describe else run.key} ===", flush=True)
        try:
            train(run, out)
        except tuple(t for t, _ in errors) as e:
            print(f"skipping {run.key}: {e}", file=sys.stderr)
            reason = next(r for t, r in errors if isinstance(e, t))
            summary.not_run.setdefault(reason, []).append(run.key)
            continue
        summary.trained += 1
    summary.seconds = time.perf_counter() - t0
    summary.report()
    return summary
