"""Counting tensor memory without an allocator: the primitives of :mod:`sesn.memory` and of
``compute_mode="auto"``'s memory rule (:mod:`sesn.nn.dispatch`). Pure torch, no sesn imports.

* :class:`StorageTracker` — a ``TorchDispatchMode`` that sees every tensor an ATen op
  returns (forward, backward and optimizer alike), counts each *storage* once (views share
  their base's bytes), follows its lifetime with a weak reference, and keeps the running
  total and its peak. The figure is device-independent: the same on CPU, CUDA and the
  ``meta`` device, where no data exists and a model of any batch runs in seconds. It is a
  sum of tensor sizes, not of allocator blocks: a CUDA caching allocator's rounding and
  a kernel's internal workspace (cuDNN, cuFFT, oneDNN scratch buffers) are not in it.
  Tensors that existed before the mode was entered count once :meth:`StorageTracker.add`
  is called on them (parameters, gradients, optimizer state, the input).
* :class:`SavedTensorCounter` — ``saved_tensors_hooks`` that add up the bytes autograd
  keeps for backward (each storage once): what a forward pass leaves behind for the
  backward pass, the part of training memory that grows with depth.
"""

from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


def storage_key(t: torch.Tensor) -> tuple:
    """Identity of ``t``'s storage (shared by all its views), valid on every device, meta
    included (meta storages have no data pointer, so the storage object's address is used)."""
    st = t.untyped_storage()
    return (t.device.type, st._cdata)


def storage_bytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


class StorageTracker(TorchDispatchMode):
    """Live bytes of all tensor storages created while active (plus those :meth:`add`-ed),
    and their peak; ``mark(name)`` records the live bytes at a point (e.g. end of forward).

    Example::

        with StorageTracker() as tr:
            tr.add(*model.parameters(), x)
            loss = model(x).sum()
            tr.mark("forward")
            loss.backward()
        tr.peak, tr.marks["forward"]
    """

    def __init__(self) -> None:
        super().__init__()
        self._live: dict[tuple, int] = {}
        self.current = 0
        self.peak = 0
        self.marks: dict[str, int] = {}
        self.peaks: dict[str, int] = {}

    def add(self, *tensors) -> None:
        """Count tensors that already exist (parameters, buffers, gradients, optimizer state)."""
        for t in tensors:
            if isinstance(t, torch.Tensor):
                self._track(t)

    def _track(self, t: torch.Tensor) -> None:
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse or otherwise storage-less tensors
            return
        key = (t.device.type, st._cdata)
        if key in self._live:
            return
        n = st.nbytes()
        self._live[key] = n
        self.current += n
        if self.current > self.peak:
            self.peak = self.current
        weakref.finalize(st, self._release, key)

    def _release(self, key) -> None:
        self.current -= self._live.pop(key, 0)

    def mark(self, name: str) -> None:
        """Record the live bytes now, and the peak since the previous mark, under ``name``."""
        self.marks[name] = self.current
        self.peaks[name] = self.peak

    def reset_peak(self) -> None:
        self.peak = self.current

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self._track(t)
        return out


class SavedTensorCounter(torch.autograd.graph.saved_tensors_hooks):
    """Bytes autograd saves for backward while active (each storage counted once).

    Only the innermost ``saved_tensors_hooks`` are used by autograd, so entering this inside
    another pair (``torch.utils.checkpoint``'s, or :mod:`sesn.nn.recompute`'s) hides the
    saved tensors from the outer pair: count where no other pair is active.
    """

    def __init__(self, exclude=()) -> None:
        """``exclude``: storage keys (:func:`storage_key`) not to count (e.g. parameters)."""
        self.bytes = 0
        self._seen: set = set(exclude)

        def pack(t: torch.Tensor):
            key = storage_key(t)
            if key not in self._seen:
                self._seen.add(key)
                self.bytes += storage_bytes(t)
            return t

        super().__init__(pack, lambda t: t)

    def __enter__(self) -> "SavedTensorCounter":
        super().__enter__()
        return self
