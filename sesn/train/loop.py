"""One epoch of training, evaluation and the data of a run (fault injection for the tests:
:mod:`sesn.train.faults`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DistributedSampler
from tqdm import tqdm

from sesn.train import faults


class TrainingDiverged(RuntimeError):
    pass


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
    return torch.utils.data.DataLoader(
        ds,
        batch_size=batch,
        sampler=sampler,
        shuffle=False,
        num_workers=workers,
        generator=generator,
        drop_last=drop_last,
    )


def drop_single_sample_batch(num_samples: int, batch: int) -> bool:
    """A final training batch of one sample cannot be batch-normalised: drop it then."""
    return num_samples % batch == 1


def seed_epoch(seed: int, epoch: int, rank: int) -> None:
    """Augmentation and dropout randomness of an epoch depend only on (seed, epoch, rank)."""
    s = (seed * 1_000_003 + epoch * 7919 + rank) % 2**63
    torch.manual_seed(s)
    import random

    import numpy as np

    np.random.seed(s % 2**32)
    random.seed(s)


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
        faults.kill_point(epoch + 1, batch + 1)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if args.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, enabled=args.amp):
            out = model(x)
            loss = F.cross_entropy(out, y)
        loss = faults.poison_loss(loss, _rank())
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
