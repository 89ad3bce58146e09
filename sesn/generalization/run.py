"""One run of the scale-generalization benchmark: train a model on the training sizes of
a scenario with early stopping on validation accuracy, then measure test accuracy per
size, size equivariance of its features, and time per epoch.

A run folder holds ``checkpoint.pt`` (written atomically every epoch: model, optimizer,
best weights, history, RNG state, settings) and, at the end, ``record.json``. A restarted
run resumes from the checkpoint when its settings are the same, and refuses otherwise
(``restart=True`` starts over). One process per run folder (a file lock).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from sesn.allocator import allocator_state, announce
from sesn.generalization.measure import size_equivariance
from sesn.generalization.profiles import Profile
from sesn.models.method import method, stir_model
from sesn.nn import dispatch
from sesn.train.checkpoint import (
    RunLock,
    atomic_write_json,
)
from sesn.train.fit import fit, make_optimizer, resume
from sesn.train.loop import evaluate
from sesn.train.record import code_version, settings_id, versions


@dataclasses.dataclass(frozen=True)
class Run:
    model: str
    scenario: int
    seed: int
    lr: float

    @property
    def key(self) -> str:
        return f"s{self.scenario}/{self.model}/lr{self.lr:g}/seed{self.seed}"

    def folder(self, results: Path, sweep: str) -> Path:
        return (
            Path(results) / "runs" / f"scenario{self.scenario}" / self.model / sweep / f"lr{self.lr:g}"
            / f"seed{self.seed}"
        )  # fmt: skip


def stride_sizes(sizes, stride: int) -> list[int]:
    sizes = sorted(sizes)
    return sizes[::stride] if stride > 1 else sizes


def _blocks(sizes: list[int]) -> list[list[int]]:
    """Sorted sizes cut into runs of equal steps (scenario 2's test sizes: two blocks)."""
    if len(sizes) < 3:
        return [sizes]
    step = min(b - a for a, b in zip(sizes, sizes[1:]))
    out = [[sizes[0]]]
    for a, b in zip(sizes, sizes[1:]):
        out[-1].append(b) if b - a == step else out.append([b])
    return out


def spread_sizes(sizes, count: int | None) -> list[int]:
    """``count`` sizes evenly spread over the sorted ``sizes``, first and last included (all
    of them when ``count`` is None or not smaller). A range made of separate blocks (scenario
    2's test sizes, on both sides of the training range) is spread block by block, the count
    shared in proportion to the blocks' lengths, so that each block keeps both its ends: the
    sizes next to the training range as well as the far ones."""
    sizes = sorted(sizes)
    if count is None or count >= len(sizes):
        return sizes
    blocks = _blocks(sizes)
    if count < 2 * len(blocks):
        raise ValueError(f"need at least 2 sizes per block of a range ({len(blocks)} blocks), got {count}")
    # 2 per block (its ends), the rest shared in proportion to the blocks' inner lengths (largest remainder)
    extra, inner = count - 2 * len(blocks), [len(b) - 2 for b in blocks]
    share = [extra * n / max(sum(inner), 1) for n in inner]
    counts = [2 + int(v) for v in share]
    for i in sorted(range(len(blocks)), key=lambda i: share[i] - int(share[i]), reverse=True)[: count - sum(counts)]:
        counts[i] += 1
    out = []
    for block, k in zip(blocks, counts):
        out += block if k >= len(block) else [block[round(i * (len(block) - 1) / (k - 1))] for i in range(k)]
    return out


def scenario_sizes(data, scenario: int, profile: Profile) -> tuple[list[int], list[int]]:
    """The training and test sizes a profile uses for a scenario."""
    train_sizes, test_sizes = data.scenario(scenario)
    return (
        spread_sizes(stride_sizes(train_sizes, profile.size_stride), profile.num_train_sizes),
        spread_sizes(stride_sizes(test_sizes, profile.size_stride), profile.num_test_sizes),
    )


def run_settings(run: Run, profile: Profile, data, device: torch.device) -> dict:
    """Everything that determines the run's result (the record's settings)."""
    return {
        **profile.settings(),
        "model": run.model,
        "scenario": run.scenario,
        "seed": run.seed,
        "lr": run.lr,
        "data_sha256": data.sha256,
        "data_domain": data.domain,
        "data_rebuilt": data.rebuilt,
        "device_type": device.type,
    }


def _batches(x, y, batch: int = 128):
    return ((x[i : i + batch], y[i : i + batch]) for i in range(0, len(x), batch))


def _accuracy(model, x, y, batch: int = 128) -> torch.Tensor:
    """Per-sample correctness (bool [N])."""
    with torch.no_grad():
        return torch.cat([model(xb).argmax(1) == yb for xb, yb in _batches(x, y, batch)])


def train_and_evaluate(
    run: Run,
    profile: Profile,
    data,
    out: Path,
    device: torch.device,
    meta: dict | None = None,
    restart: bool = False,
    progress: bool = True,
) -> dict:

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = run_settings(run, profile, data, device)
    if device.type == "cpu":
        announce()
    with RunLock(out):
        ckpt_path, record_path = out / "checkpoint.pt", out / "record.json"
        if restart:
            ckpt_path.unlink(missing_ok=True)
            record_path.unlink(missing_ok=True)
        train_sizes, test_sizes = scenario_sizes(data, run.scenario, profile)
        xtr, ytr, _, _ = data.split("train", train_sizes, profile.train_instances)
        xva, yva, _, _ = data.split("valid", train_sizes, profile.valid_instances)
        xte, yte, ste, _ = data.split("test", test_sizes, profile.test_instances)
        xtr, ytr, xva, yva, xte, yte = (t.to(device) for t in (xtr, ytr, xva, yva, xte, yte))

        torch.manual_seed(run.seed)
        model = stir_model(run.model, data.channels, data.num_classes).to(device)
        loop_args = SimpleNamespace(epochs=profile.max_epochs, amp=False, channels_last=False)
        optimizer = make_optimizer("adam", model.parameters(), run.lr)
        state = resume(ckpt_path, model, optimizer, settings, out, device=device, keys=None)

        def batches(epoch):  # this run's own order of its training images, seeded by (seed, epoch)
            g = torch.Generator().manual_seed(run.seed * 1_000_003 + epoch)
            order = torch.randperm(len(xtr), generator=g).to(device)
            return (
                (xtr[order[i : i + profile.batch_size]], ytr[order[i : i + profile.batch_size]])
                for i in range(0, len(order), profile.batch_size)
            )

        def history_entry(epoch, loss, val_acc, seconds, **_):
            # the code of each epoch: a run resumed after an update names both versions
            return dict(epoch=epoch, loss=loss, val_acc=val_acc, seconds=seconds, code_version=code_version())

        state = fit(
            model, optimizer, state, epochs=profile.max_epochs, batches=batches,
            validate=lambda: evaluate(model, _batches(xva, yva), device, loop_args), checkpoint=ckpt_path,
            settings=settings, device=device, loop_args=loop_args, patience=profile.patience,
            history_entry=history_entry, progress=progress,
        )  # fmt: skip
        best_val, best_state, history = state.best_val, state.best_state, state.history
        model.load_state_dict(best_state)
        model.eval()
        t0 = time.perf_counter()
        correct = _accuracy(model, xte, yte).cpu()
        per_size = {int(s): float(correct[ste == s].float().mean()) for s in test_sizes}
        equivariance = measure_equivariance(model, data, train_sizes, test_sizes, profile, device)
        record = {
            "status": "done",
            "dispatch": dispatch.recorded_choices(),  # the paths `auto` took (kept with every checkpoint)
            "model": run.model,
            "method": method(run.model).label,
            "scenario": run.scenario,
            "seed": run.seed,
            "lr": run.lr,
            "profile": profile.name,
            "profile_note": profile.note,
            "train_sizes": train_sizes,
            "test_sizes": test_sizes,
            "num_train": len(xtr),
            "num_test": len(xte),
            "val_acc": best_val,
            "test_acc": float(correct.float().mean()),
            "test_acc_per_size": per_size,
            "size_equivariance": equivariance,
            "epochs_run": len(history),
            "seconds_per_epoch": sum(h["seconds"] for h in history) / max(len(history), 1),
            "test_seconds": time.perf_counter() - t0,
            "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "history": history,
            "data": str(data.path),
            "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
            "torch_threads": torch.get_num_threads(),
            "cpu_allocator": allocator_state() if device.type == "cpu" else None,
            "versions": versions(),
            "settings": {**settings, "code_version": code_version()},
            **(meta or {}),
        }
        record["settings_id"] = settings_id(record["settings"])
        atomic_write_json(record, record_path)
        return record


def measure_equivariance(model, data, train_sizes, test_sizes, profile: Profile, device) -> dict:
    """Delta(a -> b) from the middle training size a to every test size b, on test objects."""
    a = sorted(train_sizes)[len(train_sizes) // 2]
    n = profile.equivariance_instances
    xa, _, _, box_a = data.split("test", [a], n)
    per_size = {}
    for b in test_sizes:
        xb, _, _, box_b = data.split("test", [b], n)
        per_size[int(b)] = size_equivariance(model, xa.to(device), box_a, xb.to(device), box_b)
    vals = list(per_size.values())
    return {"reference_size": int(a), "per_size": per_size, "mean": sum(vals) / len(vals)}
