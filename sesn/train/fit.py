"""One fit loop for every command that trains: ``sesn train`` and ``sesn reproduce``
(:mod:`sesn.train.train`) and the scale-generalization benchmark
(:mod:`sesn.generalization.run`).

:func:`fit` runs epochs: the caller's batches for each epoch (seeded by the caller: data order
and augmentation are a function of (seed, epoch), so a resumed run does not depend on RNG
continuity), one epoch of :func:`sesn.train.loop.train_epoch`, the learning-rate schedule,
validation, the best-validation weights, optional early stopping after ``patience`` epochs
without a validation gain, and every epoch an atomic checkpoint (model, optimizer, schedule,
scaler, RNG states, best weights, history, the run's settings, the layers' path choices).
:func:`resume` reads such a checkpoint back after checking that it was made with the same
settings. :func:`make_optimizer` is the one optimizer factory (``adam`` or ``sgd``: Nesterov,
momentum 0.9).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Callable, Iterable

import torch
import torch.distributed as dist

from sesn.nn import dispatch
from sesn.train import faults
from sesn.train.checkpoint import atomic_torch_save, check_resume, rng_state, set_rng_state
from sesn.train.loop import train_epoch

OPTIMIZERS = ("adam", "sgd")


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``adam``: Adam; ``sgd``: SGD with Nesterov momentum 0.9 (the paper's STL-10 optimizer)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; one of {OPTIMIZERS}")


@dataclasses.dataclass
class FitState:
    """Where a fit stands: the next epoch to run, the best validation accuracy and its weights,
    epochs since the last gain, the history (one dict per epoch), and the checkpoint it was
    resumed from (None for a fresh start)."""

    epoch: int = 0
    best_val: float = -1.0
    best_state: dict | None = None
    stale: int = 0
    history: list = dataclasses.field(default_factory=list)
    resumed: dict | None = None


def resume(
    path: Path,
    model,
    optimizer,
    settings: dict,
    out: Path,
    *,
    scheduler=None,
    scaler=None,
    device=None,
    keys="default",
) -> FitState:
    """The state saved in ``path`` by :func:`fit` (model, optimizer, schedule, scaler and RNG
    states restored in place, the layers' path choices pinned), or a fresh state where there is
    no checkpoint. A checkpoint made with other settings is refused
    (:func:`sesn.train.checkpoint.check_resume`; ``keys``: which settings must match, see there)."""
    path = Path(path)
    if not path.exists():
        return FitState()
    ckpt = torch.load(path, map_location=device, weights_only=False)
    if keys == "default":
        check_resume(ckpt.get("settings"), settings, out)
    else:
        check_resume(ckpt.get("settings"), settings, out, keys=keys)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler"):
        scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    dispatch.pin(ckpt.get("dispatch"))  # the paths `auto` took before the interruption
    return FitState(
        ckpt["epoch"] + 1, ckpt["best_val"], ckpt["best_model"], ckpt.get("stale", 0), ckpt["history"], resumed=ckpt
    )


def fit(
    model,
    optimizer,
    state: FitState,
    *,
    epochs: int,
    batches: Callable[[int], Iterable],
    validate: Callable[[], float],
    checkpoint: Path,
    settings: dict,
    device,
    loop_args,
    net=None,
    scheduler=None,
    scaler=None,
    patience: int | None = None,
    history_entry: Callable[..., dict] | None = None,
    after_train: Callable[[int], None] | None = None,
    after_epoch: Callable[[int, dict], None] | None = None,
    extra: dict | None = None,
    rank: int = 0,
    world: int = 1,
    progress: bool = False,
) -> FitState:
    """Train ``model`` (through ``net``, e.g. its DistributedDataParallel wrapper) from
    ``state`` to ``epochs``, or until ``patience`` epochs without a validation gain.

    ``batches(epoch)``: the epoch's (input, target) batches; ``validate()``: validation
    accuracy (NaN where there is none, e.g. off rank 0); ``history_entry(epoch=, loss=,
    train_acc=, val_acc=, lr=, seconds=)``: the history's dict for an epoch (default: all of
    them); ``after_train(epoch)``: called right after the epoch's training pass, before the
    schedule and validation; ``after_epoch(epoch, entry)``: called on rank 0 before the
    checkpoint is written (a progress line); ``extra``: more keys for every checkpoint. The schedule steps once per
    epoch, after the epoch's lr is recorded. Rank 0 keeps the best weights and writes the
    checkpoint; with ``world > 1`` every rank waits for it each epoch. Returns the final state."""
    net = model if net is None else net
    entry_of = history_entry or (lambda **kw: kw)
    for epoch in range(state.epoch, epochs):
        if patience is not None and state.stale >= patience:
            break
        t0 = time.perf_counter()
        loss, train_acc = train_epoch(net, batches(epoch), optimizer, device, loop_args, epoch, scaler, progress)
        if after_train is not None:
            after_train(epoch)
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        val_acc = validate()
        seconds = time.perf_counter() - t0
        entry = entry_of(epoch=epoch + 1, loss=loss, train_acc=train_acc, val_acc=val_acc, lr=lr, seconds=seconds)
        state.history.append(entry)
        if rank == 0 and val_acc > state.best_val:
            state.best_val, state.best_state, state.stale = val_acc, copy.deepcopy(model.state_dict()), 0
        else:
            state.stale += 1
        state.epoch = epoch + 1
        if rank == 0:
            if after_epoch is not None:
                after_epoch(epoch, entry)
            atomic_torch_save(
                {
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": rng_state(),
                    "best_val": state.best_val,
                    "best_model": state.best_state,
                    "stale": state.stale,
                    "history": state.history,
                    "settings": settings,
                    "dispatch": dispatch.recorded_choices(),
                    **(extra or {}),
                },
                checkpoint,
            )
            faults.kill_point(epoch + 1)  # the test-only seam (sesn.train.faults)
        if world > 1:
            dist.barrier()
    return state
