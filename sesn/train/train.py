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

The pieces: :mod:`sesn.train.config` (``TrainConfig``, the defaults), :mod:`sesn.train.loop`
(epoch, evaluation, data, fault hooks), :mod:`sesn.train.checkpoint` (atomic files, resume
check, run lock), :mod:`sesn.train.record` (settings and their id), :mod:`sesn.train.distributed`.
Python callers (``sesn reproduce``) build a ``TrainConfig`` and call :func:`run`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from sesn import settings as sesn_settings
from sesn.allocator import allocator_state, announce, configure_cpu_allocator
from sesn.io import check_output_folder, parse_bytes
from sesn.memory import fit_memory_saving
from sesn.models import count_parameters, get_model, list_models
from sesn.nn import dispatch
from sesn.nn.recompute import set_memory_saving
from sesn.nn.steerable import set_memory_rule
from sesn.train.checkpoint import (  # noqa: F401  (re-exported: the errors callers catch)
    RunInProgress,
    RunLock,
    SettingsMismatch,
    atomic_torch_save,
    atomic_write_json,
    check_resume,
    rng_state,
    set_rng_state,
)
from sesn.train.config import TrainConfig
from sesn.train.distributed import init_distributed, replica_check
from sesn.train.fit import fit, make_optimizer, resume
from sesn.train.loop import (
    TrainingDiverged,
    build_data,
    drop_single_sample_batch,
    evaluate,
    loader,
    seed_epoch,
)
from sesn.train.record import code_version, run_settings, settings_id, versions  # noqa: F401  (settings_id: re-exported)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """``sesn train``'s options: one per :class:`TrainConfig` field, from its declaration."""
    p = argparse.ArgumentParser(
        "sesn train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help
    )
    for f in dataclasses.fields(TrainConfig):
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        kwargs = dict(meta.get("argparse", {}))
        help_text = meta.get("help") or None
        if f.name == "model":  # the registered names, read when the parser is built (plug-ins included)
            help_text = f"registered model, one of: {', '.join(list_models())}"
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            kwargs["default"] = f.default_factory()
        if f.default is False:  # a bool field is a flag
            kwargs["action"] = "store_true"
        p.add_argument(f"--{f.name.replace('_', '-')}", help=help_text, **kwargs)
    return p


def main(args) -> dict:
    """Train (or, with ``test_only``, evaluate) from ``sesn train``'s parsed arguments or a
    :class:`TrainConfig`; returns the record (rank 0) or ``{}``."""
    return run(args if isinstance(args, TrainConfig) else TrainConfig.from_namespace(args))


def resolve(args) -> TrainConfig:
    """The config with the dataset's defaults filled in and the values checked."""
    return (args if isinstance(args, TrainConfig) else TrainConfig.from_namespace(args)).resolved()


def run(config: TrainConfig) -> dict:
    """Train one model as ``config`` says (the Python entry point ``sesn reproduce`` uses)."""
    args = config.resolved()
    if not args.test_only and args.output_dir is not None:
        check_output_folder(Path(args.output_dir), "--output-dir")  # before any epoch is trained
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
    model = get_model(args.model)
    memory = configure_memory(model, args, device, world)
    model = model.to(device)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if args.compile:
        model.compile()  # in place: state_dict keys, checkpoints and DDP see the module itself
    progress = rank == 0 and not args.quiet and sys.stderr.isatty()

    if args.test_only:
        if args.weights is None:
            raise ValueError("--test-only needs --weights")
        state = torch.load(args.weights, map_location=device, weights_only=False)
        state = (
            state.get("best_model", state.get("model", state))
            if isinstance(state, dict) and ("model" in state or "best_model" in state)
            else state
        )
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
        return _train(args, rank, world, device, model, out, progress, memory)


def configure_memory(model, args, device, world: int) -> dict:
    """Apply the memory options to ``model`` (before it moves to ``device``): ``fit_memory``
    measures the levels on the meta device at the per-process batch and takes the cheapest
    that fits; returns what the record keeps of it."""

    level, info = args.memory_saving, {}
    if args.fit_memory is not None:
        batch = args.batch_size // world
        precision = "amp" if args.amp else "fp32"
        level, results = fit_memory_saving(args.model, batch, args.fit_memory, precision=precision)
        info["fit_memory"] = {
            "budget_bytes": parse_bytes(args.fit_memory),
            "batch_per_process": batch,
            "peak_bytes": {lv: r.peak_bytes for lv, r in results.items()},
            "measured": results[level].method + " on meta",
        }
        print(
            f"--fit-memory {args.fit_memory}: memory_saving={level!r} "
            f"({results[level].peak_bytes / 2**30:.2f} GiB of tensors at batch {batch}; "
            + ", ".join(f"{lv} {r.peak_bytes / 2**30:.2f} GiB" for lv, r in results.items())
            + ")",
            flush=True,
        )
    set_memory_saving(model, level)
    allowance = parse_bytes(args.memory_allowance) if args.memory_allowance is not None else None
    set_memory_rule(model, args.memory_factor, allowance)
    return {"memory_saving": level, "memory_factor": args.memory_factor, "memory_allowance": allowance, **info}


def _train(args, rank, world, device, model, out, progress, memory) -> dict:
    train, val, test, sampler, checksum = build_data(args, rank, world)
    params = count_parameters(model)
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    optimizer = make_optimizer(args.optimizer, net.parameters(), args.lr, args.weight_decay)
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
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in args.as_dict().items()},
        "versions": versions(),
        "device": str(device) if device.type == "cpu" else torch.cuda.get_device_name(device),
        "world_size": world,
        "deterministic": args.deterministic,
        "compiled": bool(args.compile),
        "memory": memory,
        "cpu_allocator": allocator_state() if device.type == "cpu" else None,  # printed below (announce)
        **args.meta,
    }
    if device.type == "cpu" and rank == 0:
        announce()
    settings = run_settings(args, checksum, world)
    record["settings"] = {**settings, "code_version": code_version()}
    record["settings_id"] = settings_id(record["settings"])
    if args.restart:
        if rank == 0 and ckpt_path.exists():
            print(f"--restart: discarding {ckpt_path}")
            ckpt_path.unlink()
            record_path.unlink(missing_ok=True)
        if world > 1:  # every rank waits, whatever it saw on disk
            dist.barrier()
    state = resume(ckpt_path, model, optimizer, settings, out, scheduler=scheduler, scaler=scaler, device=device)
    if state.resumed is not None:
        made_by = state.resumed.get("code_version")
        if made_by not in (None, record["settings"]["code_version"]) and rank == 0:
            now = record["settings"]["code_version"]
            print(f"note: resuming a checkpoint made by code version {made_by} with {now}")
            record["resumed_from_code_version"] = made_by
        if rank == 0:
            print(f"resuming {out} at epoch {state.epoch + 1}/{args.epochs}")
    if drop_single_sample_batch(len(sampler), args.batch_size // world):
        record["dropped_last_batch"] = True
        if rank == 0:
            print(
                f"note: {len(sampler)} training samples per process leave a last batch of 1 "
                f"at batch size {args.batch_size // world}: it is dropped every epoch"
            )
    eval_batch = 512
    val_loader = loader(val, eval_batch, workers=args.workers) if val is not None else None
    start_epoch = state.epoch

    def batches(epoch):
        seed_epoch(args.seed, epoch, rank)
        sampler.set_epoch(epoch)
        g = torch.Generator().manual_seed(args.seed * 1_000_003 + epoch)
        drop = drop_single_sample_batch(len(sampler), args.batch_size // world)
        return loader(train, args.batch_size // world, sampler, args.workers, g, drop_last=drop)

    def validate():
        return evaluate(model, val_loader, device, args) if (val_loader is not None and rank == 0) else float("nan")

    def after_train(epoch):  # the paths auto took in the first epoch's training pass, before validation
        if args.show_dispatch and epoch == start_epoch and rank == 0:
            print(dispatch.format_decisions(), flush=True)

    def after_epoch(epoch, h):
        print(
            f"[{args.model}{'+' if args.augment else ''} seed {args.seed}] epoch {epoch + 1}/{args.epochs} "
            f"loss {h['loss']:.4f} train {100 * h['train_acc']:.2f}% val {100 * h['val_acc']:.2f}% lr {h['lr']:.2g} "
            f"{h['seconds']:.1f}s",
            flush=True,
        )

    try:
        state = fit(
            model, optimizer, state, epochs=args.epochs, batches=batches, validate=validate, checkpoint=ckpt_path,
            settings=settings, device=device, loop_args=args, net=net, scheduler=scheduler, scaler=scaler,
            after_train=after_train, after_epoch=after_epoch,
            extra={"args": record["args"], "code_version": record["settings"]["code_version"]},
            rank=rank, world=world, progress=progress,
        )  # fmt: skip
    except TrainingDiverged as e:
        if rank == 0:
            record.update(status="failed", error=str(e), history=state.history)
            atomic_write_json(record, record_path)
        raise
    best_val, best_state, history = state.best_val, state.best_state, state.history
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
            "dispatch": dispatch.recorded_choices(),  # the paths `auto` took (kept with every checkpoint)
        }
        record.update(result)
        atomic_write_json(record, record_path)
        print(
            f"[{args.model}{'+' if args.augment else ''} seed {args.seed}] done: val {100 * result['val_acc']:.2f}% "
            f"test error {result['test_error']:.2f}% ({result['seconds_per_epoch']:.1f} s/epoch)",
            flush=True,
        )
    if world > 1:
        dist.barrier()
    return record if rank == 0 else {}


def cli(argv=None) -> int:

    configure_cpu_allocator()  # also under torchrun -m sesn.train.train (idempotent)
    args = get_args_parser().parse_args(argv)
    try:
        main(args)
    except TrainingDiverged as e:
        print(f"error: training diverged: {e}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, RunInProgress) as e:  # bad input, settings mismatch, run in progress
        if sesn_settings.debug() or args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(cli())
