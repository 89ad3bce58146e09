"""Shared machinery of the steerable scale convolutions: basis buffer, kernel
assembly and caching, reference state_dict compatibility, compute modes."""

from __future__ import annotations

import math

import torch
from torch import nn

from sesn.basis import BasisSpec, basis_tensor, make_spec
from sesn.memtrack import SavedTensorCounter, StorageTracker, storage_key
from sesn.nn import dispatch
from sesn.nn.base import ScaleEquivariantModule
from sesn.nn.fft_conv import autocast_off, direct_cost, fft_cost, spectral_conv, spectral_forward
from sesn.nn.separable import SeparableTables, separable_cost
from sesn.nn.separable import supports as separable_supports
from sesn.nn.validation import autocast_on, check_dtype, output_dtype

COMPUTE_MODES = ("auto", "direct", "fft", "naive", "separable")
# FFT is chosen by "auto" when FFT_COST_FACTOR * fft_cost < direct_cost (rough real
# multiply-add counts of the two paths; the factor accounts for complex matmul and FFT
# running at a lower rate than oneDNN's direct convolution; calibrated with bench/).
FFT_COST_FACTOR = 6.0
# ... and only when its largest spectral tensor (kernel or input spectra, complex64) stays
# below this many bytes: at 96x96 with 128 channels a layer's kernel spectrum alone is 2 GB.
FFT_MAX_BYTES = 256 * 2**20
# "auto" under autograd never takes a path keeping more than this many times the activation
# memory of the leanest candidate (sesn.nn.dispatch, the memory rule); a layer's own
# ``memory_factor`` overrides it
MEMORY_FACTOR = 1.25
# ... and whose peak during its own forward and backward exceeds both that factor times the
# least peak and the least peak plus this many bytes (a transient this small does not decide
# whether a model fits a device; the FFT path's chunked spectra are of this order)
MEMORY_ALLOWANCE = 512 * 2**20
# the separable path's multiply-adds run at a lower rate than oneDNN's direct convolution
# (its passes and the gather of basis responses are memory-bound); calibrated with bench/
SEPARABLE_COST_FACTOR = 3.0


def _keep(t: torch.Tensor) -> torch.Tensor:
    return t


def support_windows(basis: torch.Tensor, windows) -> tuple[int, ...]:
    """Per scale, the smallest odd centred window at least ``windows[i]`` wide outside which
    ``basis[:, i]`` (``[N_b, S, k, k]``) is zero."""
    k = basis.shape[-1]
    out = []
    for i, m in enumerate(windows):
        nz = torch.nonzero(basis[:, i].abs().amax(dim=0))
        if len(nz):
            c = k // 2
            radius = int((nz - c).abs().max())
            m = max(m, 2 * radius + 1)
        out.append(int(m))
    return tuple(out)


class SteerableConvBase(ScaleEquivariantModule, abstract=True):
    """Base of :class:`SESConv_Z2_H` and :class:`SESConv_H_H`.

    The basis ``[N_b, S, k, k]`` is a non-persistent buffer rebuilt from the float64
    cache on every dtype/device move (so ``.double()`` gets a float64 basis, not a
    widened float32 one). ``compute_mode`` selects how the convolution is evaluated:

    * ``"naive"``: exactly as docs/bases-and-layers.md — full k x k kernels rebuilt on every call, and the
      H->H layer loops over scale taps with one grouped conv each;
    * ``"direct"``: each scale is convolved with its own odd window (the basis is zero
      outside it) and H->H taps are folded into channels (no loop over taps);
    * ``"fft"`` (stride 1 only): one input spectrum for all scales, one real batched GEMM
      (real and imaginary parts stacked) over channels and taps per frequency
      (:mod:`sesn.nn.fft_conv`);
    * ``"auto"`` (default): the fastest candidate path, timed once per layer configuration
      and input shape (:mod:`sesn.nn.dispatch`; a cost model only prunes, docs/speed.md).

    In eval mode without autograd, assembled kernels (and their spectra) are cached until
    the weight changes, the module moves, or ``train()`` is called. All modes give the
    same outputs up to float round-off (tested).
    """

    compute_modes = COMPUTE_MODES

    def __init__(
        self,
        spec: BasisSpec,
        compute_mode: str = "auto",
        memory_factor: float = MEMORY_FACTOR,
        memory_allowance: int = MEMORY_ALLOWANCE,
    ) -> None:
        super().__init__()
        check_memory_rule(memory_factor, memory_allowance)
        self.memory_factor = float(memory_factor)
        self.memory_allowance = memory_allowance
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
        # the direct path convolves each scale with its window: wide enough for the basis' support
        # (a published basis, DISCO's, is non-zero outside int(k s/s_max); cropping it changed the layer)
        self.windows = support_windows(self.basis, self.windows)
        self._kernel_cache: dict = {}
        self._table_cache: dict = {}

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
        self._kernel_cache = {}

    # -- basis follows dtype/device moves at full precision ----------------------
    def _apply(self, fn, *args, **kwargs):
        result = super()._apply(fn, *args, **kwargs)
        self.basis = basis_tensor(self.spec, dtype=self.basis.dtype).to(self.basis.device)
        self._kernel_cache = {}
        self._table_cache = {}
        return result

    def reset_parameters(self) -> None:
        nn.init.kaiming_uniform_(self.weight.view(self.weight.shape[0], -1), a=math.sqrt(5))
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    # -- kernels --------------------------------------------------------------
    def _cache_key(self):
        w = self.weight
        return (w._version, w.data_ptr(), w.dtype, w.device, self.basis.data_ptr())

    def cached(self, name, build):
        """Return ``build()``; in eval mode without autograd, reuse it (under ``name``) until
        the weight changes."""
        if self.training or torch.is_grad_enabled() and self.weight.requires_grad:
            self._kernel_cache = {}
            return build()
        key = self._cache_key()
        hit = self._kernel_cache.get(name)
        if hit is not None and hit[0] == key:
            return hit[1]
        value = build()
        self._kernel_cache[name] = (key, value)
        return value

    def dispatch(self, x: torch.Tensor, out_shape, taps: int) -> torch.Tensor:
        """Evaluate with the resolved compute mode, then add the bias (shared by all scales).
        Every mode gives the same result for an empty batch (zeros of the output shape) and
        for half-precision inputs (the FFT path computes in float32 and casts back)."""
        check_dtype(x, self.weight, type(self).__name__)
        dtype = output_dtype(x)
        if x.shape[0] == 0:
            y = x.new_zeros(out_shape, dtype=dtype)
            return y + self.bias.view(1, -1, 1, 1, 1).to(dtype) if self.bias is not None else y
        mode = self.resolve_mode(out_shape[-2:], x.shape[0], taps, x)
        y = self._evaluate(mode, x, out_shape).to(dtype)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1, 1).to(y.dtype)
        return y

    def _evaluate(self, mode: str, x: torch.Tensor, out_shape) -> torch.Tensor:
        if mode == "naive":
            return self._forward_naive(x)
        if mode == "fft":
            return self._forward_fft(x, out_shape)
        if mode == "separable":
            return self._forward_separable(x)
        return self._forward_direct(x)

    def _forward_fft(self, x: torch.Tensor, out_shape) -> torch.Tensor:
        """The FFT path (:mod:`sesn.nn.fft_conv`) with the layer's ``_fft_plan``: under autograd
        the lean function keeping only input and kernels; otherwise with the kernel matrix
        cached in eval mode."""
        if self.stride != 1:
            raise ValueError(f"{type(self).__name__}: compute_mode='fft' supports stride 1 only")
        key, kernels, plan = self._fft_plan(x, out_shape)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return spectral_conv(x, kernels(), plan)
        with autocast_off(x):
            return spectral_forward(x, self.cached(key, lambda: plan.kernel_matrix(kernels())), plan)

    def supports_mode(self, mode: str) -> bool:
        """Whether this layer can run ``mode``: FFT needs stride 1, separable basis A or B."""
        if mode == "fft":
            return self.stride == 1
        if mode == "separable":
            return separable_supports(self.spec)
        return mode in COMPUTE_MODES

    def candidate_costs(self, out_hw, batch: int, taps: int, in_hw=None) -> dict[str, float]:
        """Modelled cost (multiply-adds times a calibration factor) of each path "auto" may
        take for an input: direct always, FFT at stride 1 in float32/64 below the memory
        cap, separable for the Hermite bases."""
        h = out_hw[0] - 2 * self.padding + self.kernel_size - 1 if in_hw is None else in_hw[0]
        w = out_hw[1] - 2 * self.padding + self.kernel_size - 1 if in_hw is None else in_hw[1]
        costs = {
            "direct": direct_cost(
                batch,
                self.in_channels,
                self.out_channels,
                taps,
                self.windows,
                out_hw[0],
                out_hw[1],
                h,
                w,
                self.kernel_size,
                self.stride,
                self.padding,
            )
        }
        if separable_supports(self.spec):
            costs["separable"] = SEPARABLE_COST_FACTOR * separable_cost(
                batch, self.in_channels, self.out_channels, taps, self.spec, h, w, self.stride, self.padding
            )
        if (
            self.stride == 1
            and self.weight.dtype in (torch.float32, torch.float64)
            and not autocast_on(self.weight.device.type)
        ):
            lh, lw = h + 2 * self.padding, w + 2 * self.padding
            freqs = lh * (lw // 2 + 1)
            spectra = (
                8 * freqs * self.in_channels * taps * max(self.out_channels * self.num_scales, batch * self.num_scales)
            )
            if spectra <= FFT_MAX_BYTES:
                costs["fft"] = FFT_COST_FACTOR * fft_cost(
                    batch,
                    self.in_channels,
                    self.out_channels,
                    taps,
                    self.num_scales,
                    h,
                    w,
                    self.padding,
                    out_hw[0],
                    out_hw[1],
                )
        return costs

    def resolve_mode(self, out_hw, batch: int, taps: int, x: torch.Tensor | None = None) -> str:
        """The path "auto" takes for an input (:mod:`sesn.nn.dispatch`): the forced mode of
        ``SESN_COMPUTE_MODE`` if this layer supports it; else, with ``x`` given, the fastest
        candidate as measured once per key; else (or under ``SESN_AUTO=cost-model``, or
        for tiny layers) the cheapest by the cost model."""
        mode = self.compute_mode
        if mode != "auto":
            return mode
        in_hw = None if x is None else tuple(x.shape[-2:])
        costs = self.candidate_costs(out_hw, batch, taps, in_hw)
        forced = dispatch.forced_mode()
        if forced is not None:
            if forced not in COMPUTE_MODES:
                raise ValueError(f"SESN_COMPUTE_MODE must be one of {COMPUTE_MODES}, got {forced!r}")
            if forced in costs or forced == "naive":
                return forced
        if x is None or torch.jit.is_scripting() or torch.jit.is_tracing():
            return min(costs, key=costs.get)
        grad = (torch.is_grad_enabled() or dispatch.in_training_pass()) and (
            self.weight.requires_grad or x.requires_grad
        )
        key = (
            type(self).__name__, self.spec, self.in_channels, self.out_channels, taps, self.stride, self.padding,
            tuple(x.shape), str(x.dtype), str(x.device), grad, autocast_on(x.device.type),
            (self.memory_factor, self.memory_allowance) if grad else None,
        )  # fmt: skip
        out_shape = (x.shape[0], self.out_channels, self.num_scales, out_hw[0], out_hw[1])

        def make_call(m):
            if not grad:
                return lambda: self._evaluate(m, x, out_shape)
            xd = x.detach().requires_grad_(x.requires_grad)
            inputs = [p for p in (self.weight, xd) if p.requires_grad]

            def call():
                # own identity hooks: the candidate's saved tensors never reach a caller's
                # saved_tensors_hooks (torch.utils.checkpoint, sesn.nn.recompute)
                with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(_keep, _keep):
                    y = self._evaluate(m, xd, out_shape)
                    torch.autograd.grad(y, inputs, torch.ones_like(y))

            return call

        label = f"{type(self).__name__}({self.in_channels}->{self.out_channels}, k={self.kernel_size})"
        memory = (lambda m: self.path_memory(m, x, out_shape)) if grad else None
        rule = dispatch.MemoryRule(self.memory_factor, self.memory_allowance)
        return dispatch.choose(key, costs, make_call, x.device, memory, rule, label)

    def path_memory(self, mode: str, x: torch.Tensor, out_shape) -> tuple[int, int]:
        """Training memory of the ``mode`` path on an input like ``x``, counted on the meta
        device (no data, no arithmetic): ``(kept, peak)``. ``kept``: the bytes its forward
        keeps for backward that grow with the batch (measured at ``x``'s batch and at batch 1;
        the part that does not -- kernels, spectra of the weights -- is left out: at a small
        batch it would make a path that keeps per-sample buffers look lean). ``peak``: the
        most bytes its forward and backward hold at ``x``'s batch beyond the input and the
        parameters (output, kept tensors, temporaries, gradients)."""
        kept, peak = self._path_memory_at(mode, x, out_shape)
        b = x.shape[0]
        if b > 1:
            one, _ = self._path_memory_at(mode, x[:1], (1, *out_shape[1:]))
            kept = round((kept - one) * b / (b - 1))
        return kept, peak

    def _path_memory_at(self, mode: str, x: torch.Tensor, out_shape) -> tuple[int, int]:
        params, buffers = dict(self._parameters), dict(self._buffers)
        caches = self._kernel_cache, self._table_cache
        try:
            for name, p in params.items():
                if p is not None:
                    self._parameters[name] = nn.Parameter(torch.empty_like(p, device="meta"), p.requires_grad)
            for name, b in buffers.items():
                if b is not None:
                    self._buffers[name] = torch.empty_like(b, device="meta")
            self._kernel_cache, self._table_cache = {}, {}
            xm = torch.empty_like(x, device="meta").requires_grad_(x.requires_grad)
            inputs = [t for t in (xm, *self._parameters.values()) if t is not None and t.requires_grad]
            leaves = {storage_key(t) for t in inputs if t is not xm}  # the input counts when kept
            with StorageTracker() as tracker:
                tracker.add(xm, *self._parameters.values(), *self._buffers.values())
                base = tracker.current
                with torch.enable_grad(), SavedTensorCounter(exclude=leaves) as counter:
                    y = self._evaluate(mode, xm, out_shape)
                torch.autograd.grad(y, inputs, torch.empty_like(y), allow_unused=True)  # bias: added later
            return counter.bytes, tracker.peak - base
        finally:
            self._parameters.update(params)
            self._buffers.update(buffers)
            self._kernel_cache, self._table_cache = caches

    def separable_tables(self) -> SeparableTables:
        """1-D kernels of the separable path in this layer's dtype and device (cached)."""
        if not separable_supports(self.spec):
            raise ValueError(
                f"{type(self).__name__}: compute_mode='separable' needs basis 'A' or 'B', got {self.basis_type!r}"
            )
        key = (self.basis.dtype, self.basis.device)
        tables = self._table_cache.get(key)
        if tables is None:
            tables = SeparableTables(self.spec, self.basis.dtype, self.basis.device)
            self._table_cache[key] = tables
        return tables

    def window_slice(self, scale_index: int) -> slice:
        m = self.windows[scale_index]
        start = (self.kernel_size - m) // 2
        return slice(start, start + m)

    # -- reference checkpoints store the basis as a persistent buffer ------------
    def _load_from_state_dict(
        self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
    ):
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
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"effective_size={self.effective_size}, scales={self.scales}, basis_type={self.basis_type!r}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"compute_mode={self.compute_mode!r}"
        )


def check_memory_rule(factor: float, allowance: int) -> None:
    """auto's memory rule (:mod:`sesn.nn.dispatch`): ``factor >= 1`` (inf: time alone),
    ``allowance >= 0`` bytes; anything else is a ValueError naming it."""
    if not factor >= 1.0:
        raise ValueError(f"memory_factor must be >= 1 (inf: time alone), got {factor!r}")
    if not allowance >= 0:
        raise ValueError(f"memory_allowance must be >= 0 bytes, got {allowance!r}")


# setters on a whole model: every steerable layer in it


def set_compute_mode(model: nn.Module, mode: str) -> dict[str, int]:
    """Set ``mode`` on every steerable layer of ``model`` that supports it, ``"direct"`` on
    the others (FFT at stride 2, separable for bases other than A/B); returns how many
    layers took each mode."""
    if mode not in COMPUTE_MODES:
        raise ValueError(f"compute_mode must be one of {COMPUTE_MODES}, got {mode!r}")
    taken: dict[str, int] = {}
    for m in model.modules():
        if isinstance(m, SteerableConvBase):
            m.compute_mode = mode if m.supports_mode(mode) else "direct"
            taken[m.compute_mode] = taken.get(m.compute_mode, 0) + 1
    return taken


def set_memory_rule(model: nn.Module, factor: float | None = None, allowance: int | None = None) -> nn.Module:
    """Set ``memory_factor`` and/or ``memory_allowance`` (auto's memory rule,
    :mod:`sesn.nn.dispatch`) on every steerable layer of ``model``."""
    check_memory_rule(1.0 if factor is None else factor, 0 if allowance is None else allowance)
    for m in model.modules():
        if isinstance(m, SteerableConvBase):
            if factor is not None:
                m.memory_factor = float(factor)
            if allowance is not None:
                m.memory_allowance = allowance
    return model
