"""How ``compute_mode="auto"`` picks a path: by measurement, as ``torch.backends.cudnn.benchmark``.

For each key (layer configuration, input shape, dtype, device, grad mode, autocast) the
candidate paths are timed once — one timed warm-up call each, then :data:`REPS` rounds that
time every candidate within :data:`DROP_FACTOR` of the fastest warm-up once in turn
(interleaved, so all see the same process state), the fastest call counts — and the winner
is cached for the process. Under autograd (grad mode
on and the weight or input requiring grad) a candidate is timed forward **and** backward
(``autograd.grad`` of the output w.r.t. the weight and input), since that is what a
training step pays; otherwise forward only.

**Memory rule** (training keys only): before any timing, each candidate's forward is run
once on the ``meta`` device (no data, no arithmetic) to count the bytes it keeps for
backward (:class:`sesn.memtrack.SavedTensorCounter`) and the peak its forward and backward
hold (:class:`sesn.memtrack.StorageTracker`). A candidate is not taken, however fast, when
it keeps more than the layer's ``memory_factor`` (default 1.25) times the least kept bytes
(these add up over the depth of a model and decide whether it fits a GPU), or when its
peak exceeds both ``memory_factor`` times the least peak and the least peak plus
``memory_allowance`` (default 512 MiB: a transient that small, released after the layer,
does not decide it). ``memory_factor=float("inf")`` restores a choice by time alone;
``memory_allowance=0`` bounds the peak by the factor alone. Each decision (candidates, times, memory, pick,
reason) is kept: :func:`decisions`, :func:`format_decisions` (``sesn train --show-dispatch``).

The cost model (rough multiply-add counts, :mod:`sesn.nn.steerable`) only prunes: a
candidate more than :data:`PRUNE_FACTOR` times the cheapest modelled cost is not timed, and
when the cheapest modelled cost is below :data:`MEASURE_MIN_MACS` (tiny layers, where
timing costs more than it can save) the cost model's pick is used without timing.

Environment:

* ``SESN_COMPUTE_MODE=direct|fft|naive|separable``: every layer in ``"auto"`` takes this
  path (where the layer supports it; otherwise the cost model's pick). Deterministic.
* ``SESN_AUTO=cost-model``: ``"auto"`` uses the cost model only, never times. Deterministic.
  (``SESN_AUTO=measure``, the default, times as above.)
* ``SESN_DISPATCH_CACHE=path.json``: also keep measured choices on disk, under the machine
  (CPU model name, threads and memory allocator, or GPU name; and torch version), written
  atomically; a later process on the same machine reuses them without timing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import platform
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from sesn import settings
from sesn.allocator import allocator_state
from sesn.io import atomic_write_text

REPS = 5
# after the warm-up, candidates slower than this many times the fastest are not repeated
DROP_FACTOR = 3.0
PRUNE_FACTOR = 8.0
MEASURE_MIN_MACS = 5e7

_memo: dict[tuple, str] = {}
_decisions: dict[tuple, "Decision"] = {}
_pinned: dict[str, str] = {}  # repr(key) -> path, taken over from a run's checkpoint (pin)
_local = threading.local()
_disk: dict | None = None
_disk_path: str | None = None
measurements = 0  # number of keys timed in this process (tests read it)


def clear() -> None:
    """Forget the in-process choices (and the loaded disk cache)."""
    global _disk, _disk_path, measurements
    _memo.clear()
    _decisions.clear()
    _pinned.clear()
    _disk, _disk_path = None, None
    measurements = 0


def choices() -> dict[tuple, str]:
    """The choices made so far in this process, by key."""
    return dict(_memo)


def recorded_choices() -> dict[str, str]:
    """The choices of this process (and those pinned), keyed by ``repr(key)``: what a training
    run keeps with its checkpoint and names in its record, so that a resume takes the same paths
    (they agree only to round-off, and training amplifies round-off)."""
    out = dict(_pinned)
    out.update({repr(k): v for k, v in _memo.items()})
    return dict(sorted(out.items()))


def pin(recorded: dict[str, str]) -> None:
    """Take over a run's recorded choices (:func:`recorded_choices`): a key met again gets its
    recorded path without timing, whatever this process would measure."""
    _pinned.update({str(k): str(v) for k, v in (recorded or {}).items()})


@contextlib.contextmanager
def training_pass():
    """Within this context a layer resolves its path as under autograd even when grad mode
    is off: the forward of a block that is recomputed in backward (:mod:`sesn.nn.recompute`)
    runs without autograd but must take the path its recomputation will take."""
    old = getattr(_local, "training", False)
    _local.training = True
    try:
        yield
    finally:
        _local.training = old


def in_training_pass() -> bool:
    return getattr(_local, "training", False)


def forced_mode() -> str | None:
    return getattr(_local, "forced", None) or settings.compute_mode()


@contextlib.contextmanager
def forcing(mode: str):
    """Within this context every layer in ``auto`` takes ``mode`` where it supports it (as
    ``SESN_COMPUTE_MODE``): one path for a measurement whose numbers do not depend on the path
    (the paths agree to round-off), the same on every machine and without timing."""
    old = getattr(_local, "forced", None)
    _local.forced = mode
    try:
        yield
    finally:
        _local.forced = old


def measuring() -> bool:
    return settings.auto_measures()


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(wanted=("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")) -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in have]
    except OSError:
        pass
    return []


def machine_id(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        # the allocator changes CPU timings (sesn.allocator), so choices are kept per allocator
        name = f"{cpu_model()} ({torch.get_num_threads()} threads; allocator {allocator_state()})"
    return f"{device.type}:{name}|torch {torch.__version__}"


def _load_disk(path: str) -> dict:
    global _disk, _disk_path
    if _disk is None or _disk_path != path:
        try:
            data = json.loads(Path(path).read_text())
            _disk = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            _disk = {}
        _disk_path = path
    return _disk


def _save_disk(path: str, machine: str, key: str, mode: str) -> None:
    data = _load_disk(path)
    data.setdefault(machine, {})[key] = mode
    atomic_write_text(Path(path), json.dumps(data, indent=1, sort_keys=True))


def time_interleaved(fns: dict[str, Callable[[], None]], device: torch.device, reps: int = REPS) -> dict[str, float]:
    """Fastest call of each candidate, seconds: one timed warm-up of every candidate, then
    ``reps`` rounds that time every remaining candidate once in turn. Interleaving exposes
    all candidates to the same process state (a transient slowdown during one candidate's
    repetitions otherwise decided the pick: docs/speed.md). Candidates whose warm-up took
    more than :data:`DROP_FACTOR` times the fastest warm-up are not repeated (their warm-up
    time is returned): besides wasting time, a far slower candidate that allocates gigabytes
    slowed the candidate timed after it, in every round, and so decided the pick (measured:
    docs/speed.md)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    best = {}
    for m, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        sync()
        best[m] = time.perf_counter() - t0
    fastest = min(best.values())
    kept = {m: fn for m, fn in fns.items() if best[m] <= DROP_FACTOR * fastest}
    for _ in range(reps):
        for m, fn in kept.items():
            t0 = time.perf_counter()
            fn()
            sync()
            best[m] = min(best[m], time.perf_counter() - t0)
    return best


@dataclasses.dataclass(frozen=True)
class MemoryRule:
    """Which training candidates ``auto`` may take: those keeping at most ``factor`` x the
    least kept bytes for backward, and peaking at most ``factor`` x the least peak or the
    least peak plus ``allowance`` bytes, whichever is larger."""

    factor: float = math.inf
    allowance: float = math.inf

    def admits(self, kept: int, peak: int, least_kept: int, least_peak: int) -> bool:
        return kept <= self.factor * least_kept and peak <= max(self.factor * least_peak, least_peak + self.allowance)


@dataclasses.dataclass
class Decision:
    """What ``auto`` chose for one key, and why (:func:`decisions`)."""

    layer: str
    input_shape: tuple
    training: bool
    pick: str
    reason: str
    modelled_cost: dict
    saved_bytes: dict = dataclasses.field(default_factory=dict)  # training: kept for backward
    peak_bytes: dict = dataclasses.field(default_factory=dict)  # training: peak of its fwd + bwd
    seconds: dict = dataclasses.field(default_factory=dict)  # fastest call (warm-up if dropped)
    rule: MemoryRule = MemoryRule()


def choose(
    key: tuple,
    costs: dict[str, float],
    make_call: Callable[[str], Callable[[], None]],
    device: torch.device,
    memory: Callable[[str], tuple[int, int]] | None = None,
    rule: MemoryRule = MemoryRule(),
    label: str = "",
) -> str:
    """The path for ``key``: ``costs`` maps each candidate to its modelled cost;
    ``make_call(mode)`` returns a callable running the candidate once (forward, or
    forward+backward under autograd); ``memory(mode)`` (training keys) the bytes the
    candidate's forward keeps for backward and the peak bytes of its forward and backward.

    The memory rule (training keys): a candidate ``rule`` does not admit
    (:class:`MemoryRule`) is not taken, however fast; among the others, the fastest as
    measured (cost model: tiny layers, ``SESN_AUTO=cost-model``, the meta device)."""
    global measurements
    hit = _memo.get(key)
    if hit is not None:
        return hit
    pinned = _pinned.get(repr(key))
    if pinned is not None and pinned in costs:
        _memo[key] = pinned
        _decisions[key] = Decision(label, tuple(key[7]) if len(key) > 7 else (), memory is not None, pinned,
                                   "recorded with the run's checkpoint (a resume takes its paths)", dict(costs),
                                   rule=rule)  # fmt: skip
        return pinned
    decision = Decision(label, tuple(key[7]) if len(key) > 7 else (), memory is not None, "", "", dict(costs),
                        rule=rule)  # fmt: skip
    admitted = dict(costs)
    if memory is not None and len(costs) > 1:
        measured = {m: memory(m) for m in costs}
        decision.saved_bytes = {m: int(v[0]) for m, v in measured.items()}
        decision.peak_bytes = {m: int(v[1]) for m, v in measured.items()}
        kept, peak = min(decision.saved_bytes.values()), min(decision.peak_bytes.values())
        admitted = {
            m: c for m, c in costs.items() if rule.admits(decision.saved_bytes[m], decision.peak_bytes[m], kept, peak)
        }
    cheapest = min(admitted, key=admitted.get)
    cache = settings.dispatch_cache()
    path = str(cache) if cache is not None else None
    machine, skey = machine_id(device), repr(key)
    stored = _load_disk(path).get(machine, {}).get(skey) if path and device.type != "meta" else None
    dropped = sorted(set(costs) - set(admitted))
    why_mem = (
        f"; memory rule ({rule.factor:g}x, +{rule.allowance / 2**20:g} MiB) excludes {', '.join(dropped)}"
        if dropped
        else ""
    )
    if len(admitted) == 1:
        best, decision.reason = cheapest, "the only candidate" + why_mem
    elif stored in admitted:
        best, decision.reason = stored, f"measured earlier on this machine ({path})" + why_mem
    elif not measuring() or admitted[cheapest] < MEASURE_MIN_MACS or device.type == "meta":
        why = ("meta device: nothing to time" if device.type == "meta" else
               "tiny layer" if measuring() else "SESN_AUTO=cost-model")  # fmt: skip
        best, decision.reason = cheapest, f"cost model ({why})" + why_mem
    else:
        kept = [m for m, c in admitted.items() if c <= PRUNE_FACTOR * admitted[cheapest]]
        if len(kept) == 1:
            best, decision.reason = kept[0], f"cost model (others > {PRUNE_FACTOR:g}x its cost)" + why_mem
        else:
            measurements += 1
            decision.seconds = time_interleaved({m: make_call(m) for m in kept}, device)
            best = min(decision.seconds, key=decision.seconds.get)
            decision.reason = "fastest as measured" + why_mem
        if path:
            _save_disk(path, machine, skey, best)
    decision.pick = best
    _memo[key] = best
    _decisions[key] = decision
    return best


def decisions() -> list[Decision]:
    """What ``auto`` decided so far in this process, one :class:`Decision` per key."""
    return list(_decisions.values())


def format_decisions(rows: list[Decision] | None = None) -> str:
    """A Markdown table of :func:`decisions`: per layer and input, each candidate's modelled
    cost, measured time and saved memory, the pick and the reason."""
    rows = decisions() if rows is None else rows
    lines = ["| layer | input | training | candidates: time / kept for backward / peak | pick | reason |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for d in rows:
        cands = []
        for m in d.modelled_cost:
            t = f"{1000 * d.seconds[m]:.1f} ms" if m in d.seconds else "-"
            mem = (f"{d.saved_bytes[m] / 2**20:.1f} / {d.peak_bytes[m] / 2**20:.1f} MiB"
                   if m in d.saved_bytes else "- / -")  # fmt: skip
            cands.append(f"{m}: {t} / {mem}")
        lines.append(f"| {d.layer} | {list(d.input_shape)} | {'yes' if d.training else 'no'} | "
                     f"{'; '.join(cands)} | {d.pick} | {d.reason} |")  # fmt: skip
    return "\n".join(lines)
