"""Frozen, hashable description of a steerable filter basis (docs/bases-and-layers.md)."""

from __future__ import annotations

import dataclasses
import math
import operator
from typing import Sequence

from sesn.basis.registry import BASES, R_SPAN_RATIO, SPEC_FIELDS, W_DEFAULT_POWER, basis_kind  # noqa: F401  (re-exported)


def window_size(kernel_size: int, scale: float, max_scale: float) -> int:
    """Odd support of the basis at ``scale``: ``int(k * scale / max_scale) // 2 * 2 + 1``."""
    return int(kernel_size * scale / max_scale) // 2 * 2 + 1


def paper_scales(num_scales: int, factor: float, min_scale: float) -> tuple[float, ...]:
    """Scales of the paper's models: ``min_scale * q**i`` with ``q = factor**(1/(S-1))``,
    rounded to two decimals, as in the reference configurations (docs/models.md)."""
    if num_scales < 1:
        raise ValueError(f"num_scales must be >= 1, got {num_scales}")
    if num_scales == 1:
        return (round(float(min_scale), 2),)
    q = factor ** (1.0 / (num_scales - 1))
    return tuple(round(min_scale * q**i, 2) for i in range(num_scales))


@dataclasses.dataclass(frozen=True)
class BasisSpec:
    """Everything that determines a basis tensor; hashable so it can key a cache.

    Args:
        kernel_size: k, the side of the (zero-padded) kernel; odd and positive.
        effective_size: N_b = effective_size**2 basis functions.
        scales: increasing positive scales sigma_0 < ... < sigma_{S-1}.
        basis_type: a registered basis kind (:mod:`sesn.basis.registry`): "A" (Hermite
            orders 0..effective_size-1 per axis), "B" (multi-scale Hermite, orders
            nx+ny <= max_order at sub-scales sigma/mult**j), "D", "R" (optimised), "DISCO".
        mult: sub-scale ratio of basis "B".
        max_order: maximal total Hermite order of basis "B".
        disco_sigma: basis "DISCO" only: the smallest sigma of the Hermite functions DISCO
            combines its published proxy basis with (1.9 in DISCO's MNIST experiments).
        dilate_integer: basis "D" only: at scales whose ratio to sigma_0 is an integer d,
            use the scale-0 functions dilated by d (taps on every d-th pixel), which is
            exactly equivariant to decimation by d on the grid, instead of solving.
            (Basis "R" always does.)
        span_sigma: basis "R" (and "W") only: the sigma of the Hermite "B" functions (sub-scales
            ``span_sigma / mult**j``, orders ``nx + ny <= max_order``) that span the smallest
            scale; None (default) means ``R_SPAN_RATIO * sigma_0`` (1.9 sigma_0: DISCO's
            Hermite sigma_min relative to its smallest scale).
        whiten: basis "W" only: the power p that re-weights R's span towards its sharper
            directions (:mod:`sesn.basis.whitened`; 0 is R, 1 fully whitened); None (default)
            means 0.5.
    """

    kernel_size: int
    effective_size: int
    scales: tuple[float, ...]
    basis_type: str = "A"
    mult: float = 1.2
    max_order: int = 4
    dilate_integer: bool = False  # basis "D": dilate (not solve) at integer ratios to sigma_0
    disco_sigma: float = 1.9  # basis "DISCO": smallest sigma of its Hermite coefficient matrix
    span_sigma: float | None = None  # basis "R": sigma of its scale-0 Hermite B span (None: 1.9 sigma_0)
    whiten: float | None = None  # basis "W": power of the re-weighting of R's span (None: 0.5)

    def __post_init__(self) -> None:
        # normalise types so equal specs hash equally (lists -> tuple, ints -> floats)
        scales = self.scales
        if isinstance(scales, (int, float)):
            scales = (scales,)
        object.__setattr__(self, "scales", tuple(float(s) for s in scales))
        object.__setattr__(self, "basis_type", str(self.basis_type).upper())
        object.__setattr__(self, "mult", float(self.mult))
        if self.whiten is not None:
            try:
                object.__setattr__(self, "whiten", float(self.whiten))
            except (TypeError, ValueError):
                raise ValueError(f"whiten must be a number in [0, 1] or None, got {self.whiten!r}") from None
        if self.span_sigma is not None:
            try:
                object.__setattr__(self, "span_sigma", float(self.span_sigma))
            except (TypeError, ValueError):
                raise ValueError(f"span_sigma must be a positive number or None, got {self.span_sigma!r}") from None
        self.validate()

    @property
    def num_funcs(self) -> int:
        return self.effective_size**2

    @property
    def num_scales(self) -> int:
        return len(self.scales)

    @property
    def span(self) -> float:
        """Basis "R": the sigma of its scale-0 Hermite B span (``span_sigma`` or 1.9 sigma_0)."""
        return R_SPAN_RATIO * self.scales[0] if self.span_sigma is None else self.span_sigma

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(window_size(self.kernel_size, s, self.scales[-1]) for s in self.scales)

    def validate(self) -> None:
        k, e, scales = self.kernel_size, self.effective_size, self.scales
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0 or k % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd int, got {k!r}")
        if not isinstance(e, int) or isinstance(e, bool) or e <= 0:
            raise ValueError(f"effective_size must be a positive int, got {e!r}")
        if len(scales) == 0:
            raise ValueError("scales must not be empty")
        if any(not math.isfinite(s) or s <= 0 for s in scales):
            raise ValueError(f"scales must be positive and finite, got {list(scales)}")
        if any(b <= a for a, b in zip(scales, scales[1:])):
            raise ValueError(f"scales must be strictly increasing, got {list(scales)}")
        kind = basis_kind(self.basis_type)  # ValueError naming the registered kinds
        if e > k:
            raise ValueError(
                f"effective_size={e} is too large for kernel_size={k}: "
                f"{e * e} functions cannot be independent on a {k}x{k} window"
            )
        for s, m in zip(scales, self.windows):
            if m < 3:
                raise ValueError(
                    f"scales: the window at scale {s} collapses to {m} px "
                    f"(kernel_size={k}, max scale {scales[-1]}); use a larger kernel_size "
                    "or a smaller scale range"
                )
        if self.span_sigma is not None:
            if "span_sigma" not in kind.arguments:
                takers = " or ".join(repr(n) for n, k in BASES.items() if "span_sigma" in k.arguments)
                raise ValueError(f"span_sigma applies to basis {takers} only, not {self.basis_type!r}")
            if not math.isfinite(self.span_sigma) or self.span_sigma <= 0:
                raise ValueError(f"span_sigma must be positive and finite, got {self.span_sigma}")
        if self.whiten is not None:
            if "whiten" not in kind.arguments:
                takers = " or ".join(repr(n) for n, k in BASES.items() if "whiten" in k.arguments)
                raise ValueError(f"whiten applies to basis {takers} only, not {self.basis_type!r}")
            if not 0.0 <= self.whiten <= 1.0:
                raise ValueError(f"whiten must be in [0, 1], got {self.whiten}")
        if "mult" in kind.arguments:
            if self.mult <= 1.0:
                raise ValueError(f"mult must be > 1 for basis 'B', got {self.mult}")
            if not isinstance(self.max_order, int) or self.max_order < 0:
                raise ValueError(f"max_order must be a non-negative int, got {self.max_order!r}")


def make_spec(
    kernel_size: int,
    effective_size: int,
    scales: Sequence[float],
    basis_type: str = "A",
    **basis_kwargs,
) -> BasisSpec:
    """Build a :class:`BasisSpec`, accepting the reference layers' ``**basis_kwargs``."""
    unknown = set(basis_kwargs) - set(SPEC_FIELDS)
    if unknown:
        raise ValueError(f"unknown basis arguments {sorted(unknown)}; known: {', '.join(SPEC_FIELDS)}")
    if isinstance(scales, (int, float)) and not isinstance(scales, bool):
        scales = (scales,)  # one scale
    try:
        scales = tuple(float(s) for s in scales)
    except (TypeError, ValueError):
        raise ValueError(f"scales must be a number or a sequence of positive numbers, got {scales!r}") from None
    sizes = []
    for name, v in (("kernel_size", kernel_size), ("effective_size", effective_size)):
        try:
            sizes.append(operator.index(v))
        except TypeError:
            raise ValueError(f"{name} must be an int, got {v!r}") from None
    return BasisSpec(sizes[0], sizes[1], scales, basis_type, **basis_kwargs)
