"""torchrun + DistributedDataParallel: process-group setup and the replica check."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


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


def replica_check(model, device, world: int) -> dict:
    """DDP keeps every replica's parameters identical (gradients are averaged, every rank takes
    the same step); gather a fingerprint of each rank's parameters and record the spread."""
    flat = torch.cat([p.detach().double().flatten() for p in model.parameters()])
    stats = torch.stack([flat.sum(), flat.pow(2).sum(), flat.abs().max()]).to(device)
    gathered = [torch.zeros_like(stats) for _ in range(world)]
    dist.all_gather(gathered, stats)
    spread = max(float((g - gathered[0]).abs().max()) for g in gathered)
    return {"replicas_in_sync": spread == 0.0, "replica_spread": spread}
