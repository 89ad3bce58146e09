"""How much memory does training take? Measuring functions that return numbers.

:func:`training_memory` runs training steps of a model (forward, loss, backward, optimizer
step) at a batch and input size and reports the peak of the memory that tensors hold
(docs/memory.md):

* everywhere: the **tracked peak** — the live bytes of all tensor storages (parameters,
  gradients, optimizer state, input, activations, temporaries), taken after every ATen
  operation of the measured step (:class:`sesn.memtrack.StorageTracker`). It is
  device-independent and exact for what tensors hold; it does not include a kernel's
  internal workspace (cuDNN, cuFFT, oneDNN scratch) or an allocator's rounding and cache.
* on ``device="meta"`` (the default) the model runs without data: the same tensors, no
  arithmetic, any batch in seconds on any machine. ``compute_mode="auto"`` then picks paths
  by its cost model (nothing to time) under the same memory rule as on a real device.
* on CUDA also ``torch.cuda.max_memory_allocated`` over the measured step (what the caching
  allocator handed out, rounded blocks and workspaces included).

Nothing here prints or asserts.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn

from sesn.io import parse_bytes
from sesn.memtrack import StorageTracker
from sesn.models import get_model, get_model_info
from sesn.nn.recompute import memory_blocks, memory_saving_of, set_memory_saving
from sesn.nn.steerable import SteerableConvBase, set_compute_mode
from sesn.train.config import DEFAULTS
from sesn.train.fit import make_optimizer

METHOD = "peak of live tensor storages after each ATen op of one training step (sesn.memtrack)"


@dataclasses.dataclass
class TrainingMemory:
    """Memory of one training step.

    Attributes:
        peak_bytes: tracked peak over the measured step (forward, backward, optimizer step).
        state_bytes: held before the step: parameters, buffers, optimizer state, the batch.
        forward_bytes: held at the end of the forward pass, ``state_bytes`` included (what
            autograd keeps for backward, plus the loss).
        cuda_max_allocated_bytes: ``torch.cuda.max_memory_allocated`` over the step (CUDA only).
    """

    model: str
    batch: int
    input_shape: tuple
    device: str
    dtype: str
    precision: str
    compute_mode: str
    memory_saving: str
    optimizer: str
    peak_bytes: int
    state_bytes: int
    forward_bytes: int
    cuda_max_allocated_bytes: int | None = None
    method: str = METHOD

    @property
    def activation_bytes(self) -> int:
        """Kept for backward at the end of the forward: ``forward_bytes - state_bytes``."""
        return self.forward_bytes - self.state_bytes

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["input_shape"] = list(self.input_shape)
        d["activation_bytes"] = self.activation_bytes
        return d


def _optimizer(name: str, params) -> torch.optim.Optimizer:
    """The training's optimizer (its state is part of the peak): the STL-10 SGD or Adam."""
    if name not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {name!r}")
    return make_optimizer(name, params, 0.1, 5e-4) if name == "sgd" else make_optimizer(name, params, 1e-3)


def _default_optimizer(model_name: str | None) -> str:
    if model_name is None:
        return "sgd"

    dataset = get_model_info(model_name).dataset
    return DEFAULTS[dataset]["optimizer"] if dataset in DEFAULTS else "adam"


def training_memory(
    model: nn.Module | str,
    batch: int,
    input_shape: tuple | None = None,
    *,
    device: str | torch.device = "meta",
    compute_mode: str | None = None,
    memory_saving: str | None = None,
    precision: str = "fp32",
    optimizer: str | None = None,
    num_classes: int | None = None,
) -> TrainingMemory:
    """Peak memory of a training step of ``model`` at ``batch`` x ``input_shape``.

    Args:
        model: a registered model name, or a module (copied; the original is not touched).
        batch: batch size.
        input_shape: ``(C, H, W)``; default: the registered model's.
        device: ``"meta"`` (no data: exact tensor sizes at any batch, seconds), ``"cpu"``
            or ``"cuda"``.
        compute_mode: set on every steerable layer that supports it, ``"direct"`` on the
            others (:func:`sesn.nn.steerable.set_compute_mode`; default: as built, ``"auto"``).
        memory_saving: ``"off"``, ``"layers"``, ``"blocks"`` (:mod:`sesn.nn.recompute`;
            default: as built).
        precision: ``"fp32"``; ``"amp"``: on CUDA ``torch.autocast`` (float16); on meta the
            model in float16 (a model of AMP's activation memory: parameters, gradients and
            optimizer state are then counted in float16 too, a small difference).
        optimizer: ``"sgd"`` (momentum) or ``"adam"``; default: the model's protocol.
        num_classes: classes of the random targets (default: the model's output width).

    Returns:
        :class:`TrainingMemory` of the second of two steps (the first creates the optimizer
        state and resolves ``auto``'s paths).
    """

    name = model if isinstance(model, str) else getattr(model, "model_name", type(model).__name__)
    if isinstance(model, str):
        info = get_model_info(model)
        input_shape = tuple(input_shape or info.input_shape)
        module = get_model(model)
    else:
        if input_shape is None:
            try:
                input_shape = tuple(get_model_info(name).input_shape)
            except ValueError:
                raise ValueError(f"{name}: input_shape is required for an unregistered model") from None
        module = copy.deepcopy(model)
    if not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    device = torch.device(device)
    if precision not in ("fp32", "amp"):
        raise ValueError(f"precision must be 'fp32' or 'amp', got {precision!r}")
    if precision == "amp" and device.type not in ("cuda", "meta"):
        raise ValueError("precision='amp' is measured on CUDA, or modelled on meta (float16); not on CPU")
    if memory_saving is not None:
        set_memory_saving(module, memory_saving)
    if compute_mode is not None:
        set_compute_mode(module, compute_mode)
    opt_name = optimizer or _default_optimizer(name if isinstance(model, str) else None)
    modelled_half = precision == "amp" and device.type == "meta"
    dtype = torch.float16 if modelled_half else torch.float32
    module = module.to(device=device, dtype=dtype).train()
    x = torch.randn(batch, *input_shape, device=device, dtype=dtype)
    with torch.no_grad():
        classes = num_classes or _output_width(module, x[:1])
    target = torch.randint(0, classes, (batch,), device=device) if device.type != "meta" else None
    if device.type == "meta":
        target = torch.empty(batch, dtype=torch.long, device=device)
    opt = _optimizer(opt_name, module.parameters())
    autocast = (
        torch.autocast("cuda", dtype=torch.float16) if precision == "amp" and device.type == "cuda"
        else contextlib.nullcontext()
    )  # fmt: skip

    def step(tracker: StorageTracker | None):
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = F.cross_entropy(module(x).float(), target)
        if tracker is not None:
            tracker.mark("forward")
        loss.backward()
        opt.step()

    step(None)  # optimizer state, auto's choices, caches
    opt.zero_grad(set_to_none=True)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base_cuda = torch.cuda.memory_allocated(device)
    with StorageTracker() as tracker:
        tracker.add(*module.parameters(), *module.buffers(), x, target)
        for state in opt.state.values():
            tracker.add(*(v for v in state.values() if isinstance(v, torch.Tensor)))
        state_bytes = tracker.current
        tracker.reset_peak()
        step(tracker)
    cuda_peak = None
    if cuda:
        torch.cuda.synchronize(device)
        cuda_peak = torch.cuda.max_memory_allocated(device) - base_cuda + _state_on_cuda(module, opt, x, target)
    modes = sorted({m.compute_mode for m in module.modules() if isinstance(m, SteerableConvBase)})
    level = memory_saving_of(module)
    return TrainingMemory(
        model=name,
        batch=batch,
        input_shape=tuple(input_shape),
        device=_device_name(device),
        dtype=str(dtype).replace("torch.", ""),
        precision=precision + (" (modelled: float16 model)" if modelled_half else ""),
        compute_mode="+".join(modes) or "-",
        memory_saving=level,
        optimizer=opt_name,
        peak_bytes=tracker.peak,
        state_bytes=state_bytes,
        forward_bytes=tracker.marks["forward"],
        cuda_max_allocated_bytes=cuda_peak,
    )


def _state_on_cuda(module, opt, x, target) -> int:
    """Bytes of what existed before the step (``max_memory_allocated`` is taken relative to
    it above, so add it back): parameters, buffers, optimizer state, batch."""
    seen, total = set(), 0
    tensors = [*module.parameters(), *module.buffers(), x, target]
    for state in opt.state.values():
        tensors += [v for v in state.values() if isinstance(v, torch.Tensor)]
    for t in tensors:
        if t.device.type == "cuda":
            key = t.untyped_storage().data_ptr()
            if key not in seen:
                seen.add(key)
                total += t.untyped_storage().nbytes()
    return total


def _output_width(module: nn.Module, x: torch.Tensor) -> int:
    was = module.training
    module.eval()
    try:
        return int(module(x).shape[-1])
    finally:
        module.train(was)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def saving_levels(model: str) -> list[str]:
    """The memory-saving levels of a registered model, cheapest first: ``"off"``, ``"layers"``,
    then ``"blocks:1"`` ... ``"blocks:n"`` (the first k of its n blocks recomputed; the
    first blocks hold the largest feature maps) -- or only ``"off"`` without blocks."""

    n = len(memory_blocks(get_model(model)))
    return ["off"] + (["layers"] + [f"blocks:{k}" for k in range(1, n + 1)] if n else [])


def fit_memory_saving(
    model: str, batch: int, budget: int | str, levels=None, **kwargs
) -> tuple[str, dict[str, TrainingMemory]]:
    """The cheapest memory-saving level (in the order of ``levels``, default
    :func:`saving_levels`: less recomputation first) whose tracked peak fits ``budget``, and
    the measurement of every level tried. Raises ``ValueError`` naming each level's peak when
    none fits. ``kwargs`` go to :func:`training_memory` (default ``device="meta"``)."""
    levels = saving_levels(model) if levels is None else levels
    budget_bytes = parse_bytes(budget)
    results = {}
    for level in levels:
        results[level] = training_memory(model, batch, memory_saving=level, **kwargs)
        if results[level].peak_bytes <= budget_bytes:
            return level, results
    peaks = ", ".join(f"{lv}: {r.peak_bytes / 2**30:.2f} GiB" for lv, r in results.items())
    raise ValueError(
        f"{model} at batch {batch} does not fit {budget_bytes / 2**30:.2f} GiB at any memory-saving level "
        f"({peaks}); use a smaller batch, or precision 'amp' on CUDA"
    )
