"""Training with less activation memory, giving the same result: recomputation in backward.

The models' pre-activation blocks (``x -> BN -> ReLU [-> dropout] -> conv``) use
:func:`preactivation` for the ``BN -> ReLU [-> dropout]`` stage at every level: ReLU and
dropout are applied in place on the batch norm's output (which batch norm does not keep),
and their backward keeps one boolean per element (where the output is non-zero) instead
of the ReLU output and a float dropout mask. On top of that, the ``memory_saving`` levels
(docs/memory.md):

* ``"layers"``: the stage's output is *not kept* for backward. The convolution reading it
  would keep it as its input; within :func:`recompute_saved`, every saved tensor living in
  the stage output's storage is packed as a recipe instead, and the value is recomputed
  from the stage's input (which batch norm keeps anyway) when backward first needs it, then
  dropped after the stage's own backward. No convolution is recomputed.
* ``"blocks"`` (:func:`recompute_block`): a whole block keeps only its input; its forward is
  run again in backward (with ``"layers"`` inside, so the recomputation keeps little), then
  differentiated. Costs one more forward of the block's convolutions.

Both replay the forward exactly: the random state of dropout is restored, autocast is
re-entered as it was, and batch norm normalises with the batch statistics of the same input
without updating its running statistics a second time (:func:`batch_norm`). Outputs,
gradients and batch-norm statistics equal the plain run's, bit for bit on CPU (tested).

Only the innermost ``saved_tensors_hooks`` are used by autograd: the levels cannot run
inside a caller's non-reentrant ``torch.utils.checkpoint`` region (it would lose the
region's saved tensors); that is refused with an error.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from sesn.memtrack import storage_key
from sesn.nn import dispatch
from sesn.nn.validation import autocast_on

LEVELS = ("off", "layers", "blocks")

_state = threading.local()


def replaying() -> bool:
    """True while a forward is being recomputed for backward (batch norm then must not
    update its running statistics again)."""
    return getattr(_state, "replaying", False)


@contextlib.contextmanager
def _replay():
    old = replaying()
    _state.replaying = True
    try:
        yield
    finally:
        _state.replaying = old


def parse_level(level: str) -> tuple[str, int | None]:
    """``"off"``, ``"layers"``, ``"blocks"`` (every block recomputed) or ``"blocks:K"`` (the
    first K blocks recomputed, the others at ``"layers"``) -> ``(level, K)`` (K ``None``: all)."""
    if isinstance(level, str) and level.startswith("blocks:"):
        count = level.split(":", 1)[1]
        if count.isdigit() and int(count) >= 0:
            return "blocks", int(count)
    elif level in LEVELS:
        return level, None
    raise ValueError(f"memory_saving must be one of {LEVELS} or 'blocks:K' (K >= 0), got {level!r}")


def check_level(level: str) -> str:
    parse_level(level)
    return level


def batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor) -> torch.Tensor:
    """``bn(x)``; while :func:`replaying`, in training mode, the same output from the batch
    statistics with the running statistics left as they are: the same op on the same
    buffers (so autograd saves the same tensors, as ``torch.utils.checkpoint`` checks) with
    momentum 0 (``running * 1 + batch * 0``: unchanged for finite statistics; a non-finite
    loss stops training before any backward), and ``num_batches_tracked`` not counted."""
    if replaying() and bn.training:
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, 0.0, bn.eps)
    return bn(x)


# -- random state ---------------------------------------------------------------------
def _rng_devices(device: torch.device) -> list:
    return [device] if device.type == "cuda" else []


def _capture_rng(device: torch.device):
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return cpu, cuda


@contextlib.contextmanager
def _restored_rng(state, device: torch.device):
    if state is None:  # nothing random to replay
        yield
        return
    cpu, cuda = state
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, device)
        yield


def _autocast_state(device: torch.device):

    if not autocast_on(device.type):
        return None
    return torch.get_autocast_dtype(device.type)


def _autocast(device: torch.device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def _outer_hooks_active() -> bool:
    top = getattr(torch._C._autograd, "_top_saved_tensors_default_hooks", None)
    if top is None:
        return False
    try:
        return top(True) is not None
    except TypeError:
        return top() is not None


# -- the stage: BN -> ReLU [-> dropout], in place ----------------------------------------
def _relu_dropout_(z: torch.Tensor, p: float) -> torch.Tensor:
    """``z <- relu(z) * mask / (1 - p)`` in place (``p = 0``: ReLU only); the mask is drawn
    from the default generator of ``z``'s device (``bernoulli_`` on a boolean tensor)."""
    z.clamp_(min=0)
    if p > 0:
        mask = torch.empty_like(z, dtype=torch.bool).bernoulli_(1 - p)
        z.mul_(mask).mul_(1 / (1 - p))
    return z


class _ReLUDropout(torch.autograd.Function):
    """:func:`_relu_dropout_` on the batch norm's output, in place. Backward: the gradient
    where the output is non-zero, times ``1 / (1 - p)``; keeps those positions as booleans,
    or, with a recipe (level ``"layers"``), nothing: they come from the recomputed output."""

    @staticmethod
    def forward(ctx, z, p, recipe):
        ctx.mark_dirty(z)
        _relu_dropout_(z, p)
        ctx.scale = 1 / (1 - p) if p > 0 else 1.0
        ctx.recipe = recipe
        if recipe is None:
            ctx.save_for_backward(z > 0)
        else:
            recipe.pending += 1  # this backward reads the recomputed value too
        return z

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        if ctx.recipe is None:
            (keep,) = ctx.saved_tensors
        else:
            keep = ctx.recipe.compute() > 0
            ctx.recipe.release()
            ctx.recipe = None  # the node outlives its backward: let the recipe (and its input) go
        g = grad * keep
        return (g.mul_(ctx.scale) if ctx.scale != 1.0 else g), None, None


class _Recipe:
    """Recomputes a stage's output for backward; holds the value only from the first to the
    last reading of it (the consumers' backward, then the stage's own)."""

    def __init__(self, bn, x: torch.Tensor, p: float):
        self.bn, self.x, self.p = bn, x.detach(), p
        self.rng = _capture_rng(x.device) if p > 0 else None
        self.autocast = _autocast_state(x.device)
        self.pending = 0
        self.value: torch.Tensor | None = None

    def bind(self, out: torch.Tensor) -> None:
        self.key = storage_key(out)
        self.layout = (out.shape, out.stride(), out.storage_offset(), out.dtype)

    def compute(self) -> torch.Tensor:
        if self.value is None:
            x = self.x
            if x is None:
                raise RuntimeError(
                    "memory_saving: a stage output was needed again after its backward (retain_graph or a "
                    "second backward through the same graph); train with memory_saving='off' for that"
                )
            with torch.no_grad(), _replay(), _restored_rng(self.rng, x.device), _autocast(x.device, self.autocast):
                value = _relu_dropout_(batch_norm(self.bn, x), self.p)
            if (value.shape, value.stride(), value.storage_offset(), value.dtype) != self.layout:
                raise RuntimeError(
                    f"recomputed stage output has layout {tuple(value.shape)}/{value.stride()}/{value.dtype}, "
                    f"the forward's was {self.layout}"
                )
            self.value = value
        return self.value

    def release(self) -> None:
        self.pending -= 1
        if self.pending <= 0:  # the stage's own backward, the last reader: drop the value and input
            self.value = None
            self.x = None


def preactivation(
    bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, dropout: nn.Dropout | None = None, recompute: bool = False
) -> tuple[torch.Tensor, _Recipe | None]:
    """``dropout(relu(bn(x)))`` (``dropout``'s probability, in its training mode), and, with
    ``recompute`` under autograd, the recipe that :func:`recompute_saved` uses for the
    consumers of the output (else ``None``)."""
    p = float(dropout.p) if dropout is not None and dropout.training else 0.0
    recipe = _Recipe(bn, x, p) if recompute and torch.is_grad_enabled() else None
    z = batch_norm(bn, x)
    if not torch.is_grad_enabled() or z.grad_fn is None:
        return _relu_dropout_(z, p), None
    out = _ReLUDropout.apply(z, p, recipe)
    if recipe is not None:
        recipe.bind(out)
    return out, recipe


def _pack(recipes: Sequence[_Recipe]):
    def pack(t: torch.Tensor):
        key = storage_key(t)
        for r in recipes:
            if key == r.key:
                r.pending += 1
                return (r, t.shape, t.stride(), t.storage_offset())
        return t

    return pack


def _unpack(packed):
    if not isinstance(packed, tuple):
        return packed
    r, shape, stride, offset = packed
    view = r.compute().as_strided(shape, stride, offset)
    r.release()
    return view


@contextlib.contextmanager
def recompute_saved(*recipes: _Recipe):
    """Within this context, tensors autograd saves that live in a recipe's output storage are
    kept as the recipe (recomputed in backward), everything else as usual."""
    recipes = tuple(r for r in recipes if r is not None)
    if not recipes:
        yield
        return
    if _outer_hooks_active():
        raise RuntimeError(
            "memory_saving='layers'/'blocks' cannot run inside another saved_tensors_hooks context "
            "(e.g. a non-reentrant torch.utils.checkpoint around the model): only the innermost hooks "
            "are used by autograd, so the outer region would lose its saved tensors; use memory_saving='off'"
        )
    with torch.autograd.graph.saved_tensors_hooks(_pack(recipes), _unpack):
        yield


# -- level "blocks": a block recomputed in backward --------------------------------------
class _BlockRecompute(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn, x, *params):
        ctx.fn = fn
        ctx.rng = _capture_rng(x.device)
        ctx.autocast = _autocast_state(x.device)
        ctx.save_for_backward(x, *params)

        with torch.no_grad(), dispatch.training_pass():
            return fn(x)

    @staticmethod
    def backward(ctx, grad):
        x, *params = ctx.saved_tensors
        xd = x.detach().requires_grad_(ctx.needs_input_grad[1])
        with torch.enable_grad(), _replay(), _restored_rng(ctx.rng, x.device), _autocast(x.device, ctx.autocast):
            y = ctx.fn(xd)
        wanted = [i for i, p in enumerate(params) if ctx.needs_input_grad[2 + i]]
        inputs = ([xd] if xd.requires_grad else []) + [params[i] for i in wanted]
        root = _root(y)
        del y  # with an edge as the root, the recomputed output is not held during the backward
        grads = torch.autograd.grad([root], inputs, [grad], allow_unused=True)
        gx = grads[0] if xd.requires_grad else None
        gp = [None] * len(params)
        for i, g in zip(wanted, grads[1 if xd.requires_grad else 0 :]):
            gp[i] = g
        return (None, gx, *gp)


@functools.lru_cache(maxsize=1)
def _edges_as_outputs() -> bool:
    """Whether ``torch.autograd.grad`` takes gradient edges as outputs (probed once)."""
    edge_of = getattr(torch.autograd.graph, "get_gradient_edge", None)
    if edge_of is None:
        return False
    try:
        with torch.enable_grad():  # called from a backward, where grad mode is off
            x = torch.ones(1, requires_grad=True)
            torch.autograd.grad([edge_of(x * 2)], [x], [torch.ones(1)])
        return True
    except (TypeError, RuntimeError):
        return False


def _root(y: torch.Tensor):
    """What to differentiate from: ``y``'s gradient edge where torch accepts edges as outputs
    (the caller then drops ``y``, which is not kept during the backward), else ``y``."""
    if y.grad_fn is not None and _edges_as_outputs():
        return torch.autograd.graph.get_gradient_edge(y)
    return y


def recompute_block(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, params: Sequence[torch.Tensor]):
    """``fn(x)`` keeping only ``x`` for backward; ``params``: every tensor ``fn`` reads that
    needs a gradient (the block's parameters). Outside autograd, plainly ``fn(x)``."""
    if not torch.is_grad_enabled() or not (x.requires_grad or any(p.requires_grad for p in params)):
        return fn(x)
    if _outer_hooks_active():
        raise RuntimeError(
            "memory_saving='blocks' cannot run inside a saved_tensors_hooks context (e.g. a non-reentrant "
            "torch.utils.checkpoint around the model); use memory_saving='off'"
        )
    return _BlockRecompute.apply(fn, x, *params)


# the levels on a whole model (its blocks that declare ``memory_saving``)


def memory_blocks(model: nn.Module) -> list[nn.Module]:
    """The blocks of ``model`` that take a memory-saving level, in forward order."""
    return [m for m in model.modules() if hasattr(type(m), "memory_saving")]


def set_memory_saving(model: nn.Module, level: str) -> nn.Module:
    """Set the activation-memory level (:mod:`sesn.nn.recompute`: ``"off"``, ``"layers"``,
    ``"blocks"``, or ``"blocks:K"``: the first K blocks recomputed, the others at
    ``"layers"``) of the blocks of ``model`` that support it; a level other than "off" on a
    model without such blocks is an error."""
    kind, count = parse_level(level)
    blocks = memory_blocks(model)
    if not blocks and level != "off":
        name = getattr(model, "model_name", type(model).__name__)
        raise ValueError(f"{name}: memory_saving={level!r} is not supported (the model has no recomputable blocks)")
    if count is not None and count > len(blocks):
        raise ValueError(f"memory_saving={level!r}: the model has {len(blocks)} blocks")
    for i, m in enumerate(blocks):
        m.memory_saving = kind if count is None or i < count else "layers"
    return model


def memory_saving_of(model: nn.Module) -> str:
    """The level :func:`set_memory_saving` would need to give ``model`` its blocks' levels
    (``"mixed"`` for a combination it cannot express)."""
    levels = [m.memory_saving for m in memory_blocks(model)]
    if not levels or len(set(levels)) == 1:
        return levels[0] if levels else "off"
    k = levels.index("layers") if "layers" in levels else len(levels)
    if all(lv == "blocks" for lv in levels[:k]) and all(lv == "layers" for lv in levels[k:]):
        return f"blocks:{k}"
    return "mixed"
