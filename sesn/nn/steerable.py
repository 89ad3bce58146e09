"""Shared machinery of the steerable scale convolutions: basis buffer, kernel
assembly and caching, reference state_dict compatibility, compute modes."""

from __future__ import annotations

import math

import torch
from torch import nn

from sesn.basis import BasisSpec, basis_tensor, make_spec

COMPUTE_MODES = ("naive", "fast")


class SteerableConvBase(nn.Module):
    """Base of :class:`SESConv_Z2_H` and :class:`SESConv_H_H`.

    The basis ``[N_b, S, k, k]`` is a non-persistent buffer rebuilt from the float64
    cache on every dtype/device move (so ``.double()`` gets a float64 basis, not a
    widened float32 one). ``compute_mode`` selects how the convolution is evaluated:

    * ``"naive"``: exactly as SPEC §3 — full k x k kernels rebuilt on every call, and the
      H->H layer loops over scale taps with one grouped conv each;
    * ``"fast"`` (default): each scale is convolved with its own odd window (the basis is
      zero outside it), H->H taps are folded into channels (no loop over taps), and
      assembled kernels are cached while the module is in eval mode.

    Both give the same outputs up to float round-off (tested).
    """

    def __init__(self, spec: BasisSpec, compute_mode: str = "fast") -> None:
        super().__init__()
        self.spec = spec
        self.kernel_size = spec.kernel_size
        self.effective_size = spec.effective_size
        self.scales = list(spec.scales)
        self.num_scales = spec.num_scales
        self.num_funcs = spec.num_funcs
        self.basis_type = spec.basis_type
        self.windows = spec.windows
        self.compute_mode = compute_mode
        self.register_buffer("basis", basis_tensor(spec), persistent=False)
        self._kernel_cache: tuple | None = None

    @staticmethod
    def make_spec(kernel_size, effective_size, scales, basis_type, basis_kwargs) -> BasisSpec:
        return make_spec(kernel_size, effective_size, scales, basis_type, **basis_kwargs)

    # -- compute mode ---------------------------------------------------------
    @property
    def compute_mode(self) -> str:
        return self._compute_mode

    @compute_mode.setter
    def compute_mode(self, mode: str) -> None:
        if mode not in COMPUTE_MODES:
            raise ValueError(f"compute_mode must be one of {COMPUTE_MODES}, got {mode!r}")
        self._compute_mode = mode
        self._kernel_cache = None

    # -- basis follows dtype/device moves at full precision ----------------------
    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)
        self.basis = basis_tensor(self.spec, dtype=self.basis.dtype).to(self.basis.device)
        self._kernel_cache = None
        return result

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight.view(self.weight.shape[0], -1), a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # -- kernels --------------------------------------------------------------
    def _cache_key(self):
        w = self.weight
        return (w._version, w.data_ptr(), w.dtype, w.device, self.basis.data_ptr(), self._compute_mode)

    def cached(self, build):
        """Return ``build()``; in eval mode without autograd, reuse it until the weight changes."""
        if self.training or torch.is_grad_enabled() and self.weight.requires_grad:
            self._kernel_cache = None
            return build()
        key = self._cache_key()
        if self._kernel_cache is not None and self._kernel_cache[0] == key:
            return self._kernel_cache[1]
        value = build()
        self._kernel_cache = (key, value)
        return value

    def window_slice(self, scale_index: int) -> slice:
        m = self.windows[scale_index]
        start = (self.kernel_size - m) // 2
        return slice(start, start + m)

    # -- reference checkpoints store the basis as a persistent buffer ------------
    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        key = prefix + "basis"
        if key in state_dict:
            stored = state_dict.pop(key)
            ours = self.basis.detach().to("cpu", torch.float64)
            stored64 = stored.detach().to("cpu", torch.float64)
            if stored64.shape != ours.shape:
                error_msgs.append(
                    f"{key}: checkpoint basis has shape {list(stored64.shape)}, this layer's basis "
                    f"{list(ours.shape)} (spec {self.spec})"
                )
            elif not torch.allclose(stored64, ours, rtol=1e-4, atol=1e-5 * float(ours.abs().max())):
                error_msgs.append(
                    f"{key}: checkpoint basis differs from this layer's basis (spec {self.spec}); "
                    "build the layer with the same kernel_size, effective_size, scales, basis_type and basis kwargs"
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"effective_size={self.effective_size}, scales={self.scales}, basis_type={self.basis_type!r}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"compute_mode={self.compute_mode!r}"
        )
