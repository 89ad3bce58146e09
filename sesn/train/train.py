"""Train and evaluate one model (docs/protocols.md), torchvision-references style.

    python -m sesn.train.train --model mnist_ses_scalar_28 --data datasets/mnist_scale/mnist_seed0 \\
        --output-dir results/runs/demo [--augment] [--seed 0] [--deterministic]
    torchrun --nproc_per_node 2 -m sesn.train.train ...       # DistributedDataParallel
    python -m sesn.train.train --model ... --data ... --test-only --weights best.pt

MNIST-scale defaults: Adam, lr 0.01, 60 epochs, lr x0.1 at 20 and 40, batch 128; the model
with the best validation accuracy is evaluated once on the test set. STL-10 defaults: SGD
Nesterov (momentum 0.9), lr 0.1, weight decay 5e-4, 1000 epochs, x0.2 at 300/400/600/800,
batch 128; final-epoch test accuracy.

Every epoch writes ``checkpoint.pt`` atomically (model, optimizer, scheduler, RNG states,
best-validation weights, history); a restarted run resumes from it and ends with the same
result as an uninterrupted one (each epoch's data order and augmentation are seeded by
(seed, epoch), so resuming does not depend on RNG continuity). ``record.json`` holds the
outcome (arguments, versions, device, seed, data checksum, parameters, time per epoch,
val/test accuracy, status). A non-finite loss stops the run with status "failed".

Fault injection (for the resume tests): ``SESN_FAULT_KILL_AT=E`` makes the process kill
itself with SIGKILL right after the checkpoint of epoch E (1-based) is written, and
``SESN_FAULT_KILL_AT=E.B`` at batch B of epoch E, before that batch's optimizer step.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DistributedSampler
from tqdm import tqdm

import sesn
from sesn.io import exclusive_lock
from sesn.models import count_parameters, get_model, get_model_info, list_models
from sesn.train.checkpoint import atomic_torch_save, atomic_write_json, rng_state, set_rng_state

DEFAULTS = {
    "mnist-scale": dict(optimizer="adam", lr=0.01, epochs=60, lr_steps=[20, 40], lr_gamma=0.1, batch_size=128, weight_decay=0.0, select="best-val"),
    "stl10": dict(optimizer="sgd", lr=0.1, epochs=1000, lr_steps=[300, 400, 600, 800], lr_gamma=0.2, batch_size=128, weight_decay=5e-4, select="last"),
}


class TrainingDiverged(RuntimeError):
    pass


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser("sesn train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help)
    p.add_argument("--dataset", choices=sorted(DEFAULTS), default="mnist-scale")
    p.add_argument("--model", required=True, help=f"registered model, one of: {', '.join(list_models())}")
    p.add_argument("--data", type=Path, required=True, help="MNIST-scale realization folder, or the STL-10 data root")
    p.add_argument("--output-dir", type=Path, default=None, help="run folder (checkpoint, record); required unless --test-only")
    p.add_argument("--augment", action="store_true", help='MNIST-scale "+" training augmentation (random rescale 0.5-2.0)')
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--lr-steps", type=int, nargs="*", default=None, help="epochs at which lr is multiplied by --lr-gamma")
    p.add_argument("--lr-gamma", type=float, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (split over DDP processes)")
    p.add_argument("--optimizer", choices=["adam", "sgd"], default=None)
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--deterministic", action="store_true", help="torch.use_deterministic_algorithms(True)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (CUDA)")
    p.add_argument("--workers", type=int, default=0, help="data loader workers")
    p.add_argument("--test-only", action="store_true", help="only evaluate --weights on the test set")
    p.add_argument("--weights", type=Path, default=None, help="state_dict or checkpoint to evaluate with --test-only")
    p.add_argument("--stl10-verify", choices=["md5", "layout"], default="md5", help=argparse.SUPPRESS)
    p.add_argument("--meta", type=json.loads, default={}, help=argparse.SUPPRESS)  # extra fields for the record (sweeps)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    p.add_argument("--restart", action="store_true", help="discard an existing checkpoint in --output-dir and train from scratch (a checkpoint made with other settings is otherwise refused)")
    return p


def resolve(args) -> argparse.Namespace:
    d = DEFAULTS[args.dataset]
    for key in ("optimizer", "lr", "epochs", "lr_steps", "lr_gamma", "batch_size", "weight_decay"):
        if getattr(args, key) is None:
            setattr(args, key, d[key])
    args.select = d["select"]
    for key in ("epochs", "batch_size"):
        if not isinstance(getattr(args, key), int) or getattr(args, key) < 1:
            raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, got {getattr(args, key)!r}")
    if not args.lr > 0:
        raise ValueError(f"--lr must be positive, got {args.lr!r}")
    if any(s < 1 for s in args.lr_steps):
        raise ValueError(f"--lr-steps must be epochs >= 1, got {args.lr_steps}")
    info = get_model_info(args.model)  # raises ValueError with close names
    expected = {"mnist-scale": "mnist-scale", "stl10": "stl10"}[args.dataset]
    if info.dataset != expected:
        raise ValueError(f"model {args.model!r} is for {info.dataset}, not {args.dataset}")
    if args.amp and not str(args.device).startswith("cuda"):
        raise ValueError("--amp needs a CUDA device")
    return args


# --- distributed --------------------------------------------------------------------


def init_distributed(device: str):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, torch.device(device)
    backend = "nccl" if device.startswith("cuda") else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    if device.startswith("cuda"):
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device(device)


# --- data ----------------------------------------------------------------------------


def build_data(args, rank: int, world: int):
    if args.dataset == "mnist-scale":
        from sesn.data.loaders import MNISTScale

        train = MNISTScale(args.data, "train", augment=args.augment)
        val = MNISTScale(args.data, "val")
        test = MNISTScale(args.data, "test")
        from sesn.io import read_json

        manifest = read_json(Path(args.data) / "manifest.json")
        checksum = manifest["sha256"]
    else:
        from sesn.data.stl10 import STL10, stl10_test_transform, stl10_train_transform

        train = STL10(args.data, "train", transform=stl10_train_transform(), verify=args.stl10_verify)
        val = None
        test = STL10(args.data, "test", transform=stl10_test_transform(), verify=args.stl10_verify)
        checksum = {"stl10": args.stl10_verify}
    if args.batch_size % world:
        raise ValueError(f"--batch-size {args.batch_size} is not divisible by the {world} processes")
    sampler = DistributedSampler(train, num_replicas=world, rank=rank, shuffle=True, seed=args.seed, drop_last=False)
    return train, val, test, sampler, checksum


def loader(ds, batch, sampler=None, workers=0, generator=None, drop_last=False):
    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=sampler, shuffle=False, num_workers=workers, generator=generator, drop_last=drop_last)


def drop_single_sample_batch(num_samples: int, batch: int) -> bool:
    """A final training batch of one sample cannot be batch-normalised: drop it then."""
    return num_samples % batch == 1


# --- loops ---------------------------------------------------------------------------


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Augmentation and dropout randomness of an epoch depend only on (seed, epoch, rank)."""
    s = (seed * 1_000_003 + epoch * 7919 + rank) % 2**63
    torch.manual_seed(s)
    import random

    import numpy as np

    np.random.seed(s % 2**32)
    random.seed(s)


def fault_point(epoch: int, batch: int | None = None) -> None:
    """Kill this process (SIGKILL, as ``kill -9``) where SESN_FAULT_KILL_AT says (1-based)."""
    where = os.environ.get("SESN_FAULT_KILL_AT")
    if where and where == (f"{epoch}" if batch is None else f"{epoch}.{batch}"):
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _all_finite(loss: torch.Tensor) -> bool:
    """Whether the loss is finite on every rank: under DDP one rank's NaN stops all of them
    together, so rank 0 records the failure (alone, the failing rank would take the others
    down through torchrun, or leave them waiting in the gradient all-reduce)."""
    finite = bool(torch.isfinite(loss))
    if _world() > 1:
        flag = torch.tensor([0.0 if finite else 1.0], device=loss.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return flag.item() == 0.0
    return finite


def train_epoch(model, data, optimizer, device, args, epoch, scaler, progress):
    model.train()
    total_loss = correct = seen = 0.0
    it = tqdm(data, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, disable=not progress, unit="batch")
    for batch, (x, y) in enumerate(it):
        fault_point(epoch + 1, batch + 1)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=args.amp):
            out = model(x)
            loss = F.cross_entropy(out, y)
        nan_rank = os.environ.get("SESN_FAULT_NAN_RANK")
        if nan_rank is not None and nan_rank == str(_rank()):  # fault injection (tests)
            loss = loss * float("nan")
        if not _all_finite(loss):
            where = f" (on at least one of {_world()} processes)" if _world() > 1 else ""
            raise TrainingDiverged(f"non-finite loss at epoch {epoch + 1}, after {int(seen)} samples{where}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        total_loss += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
        it.set_postfix(loss=f"{total_loss / seen:.4f}")
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def evaluate(model, data, device, args) -> float:
    model.eval()
    correct = seen = 0
    for x, y in data:
        x, y = x.to(device), y.to(device)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=args.amp):
            out = model(x)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
    return correct / max(seen, 1)


def versions() -> dict:
    import numpy
    import torchvision

    return {"sesn": sesn.__version__, "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": numpy.__version__, "python": platform.python_version(), "cuda": torch.version.cuda}


# What determines a run's result. A checkpoint made with other values is not resumed, and
# the reproduction table only averages runs whose values agree (except the seed and data).
SETTINGS = ("model", "dataset", "data_sha256", "augment", "epochs", "lr", "lr_steps", "lr_gamma", "batch_size",
            "optimizer", "weight_decay", "seed", "amp", "channels_last", "deterministic", "world_size",
            "workers", "device_type")  # fmt: skip


def code_version() -> str:
    """The package version and, in a git checkout, the commit (``+dirty`` with local changes)."""
    import subprocess

    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return sesn.__version__
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "sesn"], cwd=root, capture_output=True, text=True, timeout=10)
        return f"{sesn.__version__}+g{commit.stdout.strip()}{'.dirty' if dirty.stdout.strip() else ''}"
    except (OSError, subprocess.SubprocessError):
        return sesn.__version__


def run_settings(args, checksum, world: int) -> dict:
    """Everything that determines the result of a run (SETTINGS) plus the code version."""
    values = {**vars(args), "data_sha256": checksum, "world_size": world, "device_type": torch.device(str(args.device)).type}
    out = {k: values[k] for k in SETTINGS}
    out["lr_steps"] = sorted(s for s in out["lr_steps"] if s < out["epochs"])  # steps past the end do nothing
    return out


def settings_id(settings: dict, exclude=("code_version",)) -> str:
    """Short hash of the settings (sorted JSON), without the keys in ``exclude``."""
    import hashlib

    kept = {k: v for k, v in settings.items() if k not in exclude}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:12]


class SettingsMismatch(ValueError):
    """A checkpoint was made with other settings than the run asked for now."""


def check_resume(saved: dict | None, now: dict, folder: Path) -> None:
    """Refuse to resume a checkpoint whose settings differ (code version excepted: printed)."""
    if saved is None:
        raise SettingsMismatch(f"{folder}: the checkpoint records no settings (made by an older version); pass --restart to train from scratch")
    diff = [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in SETTINGS if saved.get(k) != now.get(k)]
    if diff:
        raise SettingsMismatch(
            f"{folder}: cannot resume, the checkpoint was made with other settings ({'; '.join(diff)}); "
            "pass --restart to discard it and train from scratch, or use another --output-dir"
        )


class RunInProgress(RuntimeError):
    """Another live process holds the run folder's lock."""


class RunLock:
    """One process per run folder: an exclusive lock (:func:`sesn.io.exclusive_lock`) on
    ``run.lock``, held while the run trains; released by the OS if the holder dies, so a
    stale lock never blocks a restart. The file names the holder (pid and host)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / "run.lock"
        self._lock = None

    def __enter__(self):
        import socket

        lock = exclusive_lock(self.path, wait=False)
        try:
            f = lock.__enter__()
        except BlockingIOError:
            holder = self.path.read_text().strip() or "another process"
            raise RunInProgress(f"{self.path.parent}: run is in progress in {holder}") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()}")
        f.flush()
        self._lock = lock
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None


def main(args) -> dict:
    args = resolve(args)
    rank, world, device = init_distributed(str(args.device))
    try:
        return _main(args, rank, world, device)
    finally:
        if world > 1:
            dist.destroy_process_group()


def _main(args, rank, world, device) -> dict:
    if args.deterministic:
        torch.use_deterministic_algorithms(True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(args.seed)
    model = get_model(args.model).to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    progress = rank == 0 and not args.quiet and sys.stderr.isatty()

    if args.test_only:
        if args.weights is None:
            raise ValueError("--test-only needs --weights")
        state = torch.load(args.weights, map_location=device, weights_only=False)
        state = state.get("best_model", state.get("model", state)) if isinstance(state, dict) and ("model" in state or "best_model" in state) else state
        model.load_state_dict(state)
        _, _, test, _, _ = build_data(args, 0, 1)
        acc = evaluate(model, loader(test, 512, workers=args.workers), device, args)
        print(f"{args.model} on {args.data}: test accuracy {100 * acc:.2f} %, error {100 * (1 - acc):.2f} %")
        return {"test_acc": acc}

    if args.output_dir is None:
        raise ValueError("--output-dir is required for training")
    out = Path(args.output_dir)
    lock = RunLock(out) if rank == 0 else contextlib.nullcontext()
    with lock:
        return _train(args, rank, world, device, model, out, progress)


def _train(args, rank, world, device, model, out, progress) -> dict:
    train, val, test, sampler, checksum = build_data(args, rank, world)
    params = count_parameters(model)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if args.optimizer == "adam":
        optimizer = torch.optim.Adam(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.lr_steps, gamma=args.lr_gamma)
    scaler = torch.amp.GradScaler(device.type) if args.amp else None
    record_path, ckpt_path = out / "record.json", out / "checkpoint.pt"
    record = {
        "status": "running",
        "model": args.model,
        "dataset": args.dataset,
        "data": str(args.data),
        "data_sha256": checksum,
        "augment": args.augment,
        "seed": args.seed,
        "params": params,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": versions(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "world_size": world,
        "deterministic": args.deterministic,
        **args.meta,
    }
    settings = run_settings(args, checksum, world)
    record["settings"] = {**settings, "code_version": code_version()}
    record["settings_id"] = settings_id(record["settings"])
    start_epoch, best_val, best_state, history = 0, -1.0, None, []
    if args.restart:
        if rank == 0 and ckpt_path.exists():
            print(f"--restart: discarding {ckpt_path}")
            ckpt_path.unlink()
            record_path.unlink(missing_ok=True)
        if world > 1:  # every rank waits, whatever it saw on disk
            dist.barrier()
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=False)
        check_resume(ckpt.get("settings"), settings, out)
        if ckpt.get("code_version") not in (None, record["settings"]["code_version"]) and rank == 0:
            print(f"note: resuming a checkpoint made by code version {ckpt['code_version']} with {record['settings']['code_version']}")
            record["resumed_from_code_version"] = ckpt["code_version"]
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        set_rng_state(ckpt["rng"])
        start_epoch, best_val, best_state, history = ckpt["epoch"] + 1, ckpt["best_val"], ckpt["best_model"], ckpt["history"]
        if rank == 0:
            print(f"resuming {out} at epoch {start_epoch + 1}/{args.epochs}")
    if drop_single_sample_batch(len(sampler), args.batch_size // world):
        record["dropped_last_batch"] = True
        if rank == 0:
            print(f"note: {len(sampler)} training samples per process leave a last batch of 1 at batch size {args.batch_size // world}: it is dropped every epoch")
    eval_batch = 512
    val_loader = loader(val, eval_batch, workers=args.workers) if val is not None else None
    try:
        for epoch in range(start_epoch, args.epochs):
            t0 = time.perf_counter()
            seed_epoch(args.seed, epoch, rank)
            sampler.set_epoch(epoch)
            g = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch)
            drop = drop_single_sample_batch(len(sampler), args.batch_size // world)
            train_loader = loader(train, args.batch_size // world, sampler, args.workers, g, drop_last=drop)
            loss, train_acc = train_epoch(net, train_loader, optimizer, device, args, epoch, scaler, progress)
            lr = optimizer.param_groups[0]["lr"]
            scheduler.step()
            val_acc = evaluate(model, val_loader, device, args) if (val_loader is not None and rank == 0) else float("nan")
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch + 1, "loss": loss, "train_acc": train_acc, "val_acc": val_acc, "lr": lr, "seconds": seconds})
            if rank == 0 and val_acc > best_val:
                best_val, best_state = val_acc, copy.deepcopy(model.state_dict())
            if rank == 0:
                print(f"[{args.model}{'+' if args.augment else ''} seed {args.seed}] epoch {epoch + 1}/{args.epochs} loss {loss:.4f} train {100 * train_acc:.2f}% val {100 * val_acc:.2f}% lr {lr:.2g} {seconds:.1f}s", flush=True)
                atomic_torch_save(
                    {
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "rng": rng_state(),
                        "best_val": best_val,
                        "best_model": best_state,
                        "history": history,
                        "args": record["args"],
                        "settings": settings,
                        "code_version": record["settings"]["code_version"],
                    },
                    ckpt_path,
                )
                fault_point(epoch + 1)
            if world > 1:
                dist.barrier()
    except TrainingDiverged as e:
        if rank == 0:
            record.update(status="failed", error=str(e), history=history)
            atomic_write_json(record, record_path)
        raise
    if world > 1:
        record.update(replica_check(model, device, world))
    result = {}
    if rank == 0:
        if args.select == "best-val" and best_state is not None:
            model.load_state_dict(best_state)
        atomic_torch_save(model.state_dict(), out / "best.pt" if args.select == "best-val" else out / "final.pt")
        test_acc = evaluate(model, loader(test, eval_batch, workers=args.workers), device, args)
        epoch_seconds = [h["seconds"] for h in history]
        result = {
            "status": "done",
            "val_acc": best_val if args.select == "best-val" else history[-1]["val_acc"],
            "test_acc": test_acc,
            "test_error": 100 * (1 - test_acc),
            "epochs": args.epochs,
            "seconds_per_epoch": sum(epoch_seconds) / max(len(epoch_seconds), 1),
            "history": history,
        }
        record.update(result)
        atomic_write_json(record, record_path)
        print(f"[{args.model}{'+' if args.augment else ''} seed {args.seed}] done: val {100 * result['val_acc']:.2f}% test error {result['test_error']:.2f}% ({result['seconds_per_epoch']:.1f} s/epoch)", flush=True)
    if world > 1:
        dist.barrier()
    return record if rank == 0 else {}


def replica_check(model, device, world: int) -> dict:
    """DDP keeps every replica's parameters identical (gradients are averaged, every rank takes
    the same step); gather a fingerprint of each rank's parameters and record the spread."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    stats = torch.stack([flat.sum(), flat.pow(2).sum(), flat.abs().max()]).to(device)
    gathered = [torch.zeros_like(stats) for _ in range(world)]
    dist.all_gather(gathered, stats)
    spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
    return {"replicas_in_sync": spread == 0.0, "replica_spread": spread}


def cli(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        main(args)
    except TrainingDiverged as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, RunInProgress) as e:  # bad input, settings mismatch, run in progress
        if os.environ.get("SESN_DEBUG") or args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
