"""One registry of basis kinds: everything the package needs to know about a basis.

Each kind declares, once:

* ``build``: spec -> the basis ``[N_b, S, k, k]`` (float64, read-only, cached by the builder);
* ``arguments``: the :class:`~sesn.basis.spec.BasisSpec` fields beyond kernel size,
  effective size and scales that it reads (``mult``, ``max_order``, ``span_sigma``, ...): a
  layer passes them on, a spec refuses the others;
* ``separable``: spec -> 1-D factor tables for the separable compute path
  (:func:`sesn.basis.hermite.separable_factors` documents the format), or None;
* ``measured``: whether the project's own tolerance tables and reports measure it at every
  paper configuration;
* ``configurations``: named default configurations (spec arguments), e.g. the one a basis
  was published for.

Adding a basis = one file with its builder and one :func:`register_basis` call
(docs/extending.md walks through it; ``tests/test_basis_registry.py`` does it with a toy
basis). The kinds of this package register below; their builders are imported lazily, so
this module imports nothing of the package but the spec.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

import numpy as np

SPEC_FIELDS = ("mult", "max_order", "dilate_integer", "disco_sigma", "span_sigma", "whiten")


@dataclasses.dataclass(frozen=True)
class BasisKind:
    name: str
    build: Callable[..., np.ndarray]
    description: str
    arguments: tuple[str, ...] = ()
    separable: Callable[..., tuple] | None = None
    measured: bool = False
    configurations: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.arguments) - set(SPEC_FIELDS)
        if unknown:
            raise ValueError(f"basis {self.name!r}: unknown spec arguments {sorted(unknown)}; known: {SPEC_FIELDS}")
        if not self.name or self.name != self.name.upper():
            raise ValueError(f"a basis name is non-empty and upper case (specs normalise it), got {self.name!r}")


BASES: dict[str, BasisKind] = {}


def register_basis(kind: BasisKind) -> BasisKind:
    """Add a basis kind; a name registered twice is an error."""
    if kind.name in BASES:
        raise ValueError(f"basis {kind.name!r} is already registered")
    BASES[kind.name] = kind
    return kind


def unregister_basis(name: str) -> None:
    """Remove a kind (tests of plug-in bases)."""
    BASES.pop(name, None)


def basis_kind(name: str) -> BasisKind:
    try:
        return BASES[str(name).upper()]
    except KeyError:
        raise ValueError(f"basis_type must be one of {tuple(BASES)}, got {name!r}") from None


def measured_bases() -> str:
    """The bases the project's tolerance tables and reports measure, e.g. ``"ABDR"``."""
    return "".join(k.name for k in BASES.values() if k.measured)


def spec_arguments(basis: str, config) -> dict:
    """The spec arguments ``basis`` reads, taken from ``config`` (an object with attributes;
    missing or None ones are left out)."""
    out = {}
    for field in basis_kind(basis).arguments:
        v = getattr(config, field, None)
        if v is not None:
            out[field] = v
    return out


def keep_arguments(basis: str, kwargs: dict) -> dict:
    """``kwargs`` without the spec arguments ``basis`` does not read (e.g. a model's ``mult``
    when it is built with basis A)."""
    reads = set(basis_kind(basis).arguments)
    return {k: v for k, v in kwargs.items() if k not in SPEC_FIELDS or k in reads}


def _lazy(module: str, function: str) -> Callable:
    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), function)(*args, **kwargs)

    call.__name__ = call.__qualname__ = f"{module}.{function}"
    return call


_HERMITE = "sesn.basis.hermite"
register_basis(
    BasisKind(
        "A",
        _lazy(_HERMITE, "hermite_basis"),
        "Hermite-Gaussian functions, orders 0..effective_size-1 per axis",
        separable=_lazy(_HERMITE, "separable_factors"),
        measured=True,
    )
)
register_basis(
    BasisKind(
        "B",
        _lazy(_HERMITE, "hermite_basis"),
        "multi-scale Hermite-Gaussian functions, orders nx+ny <= max_order at sub-scales sigma/mult**j",
        arguments=("mult", "max_order"),
        separable=_lazy(_HERMITE, "separable_factors"),
        measured=True,
    )
)
register_basis(
    BasisKind(
        "D",
        _lazy("sesn.basis.optimized", "optimized_basis"),
        "optimised for equivariance (DISCO-style, one linear solve) from Hermite A functions",
        arguments=("dilate_integer",),
        measured=True,
    )
)
register_basis(
    BasisKind(
        "R",
        _lazy("sesn.basis.optimized", "optimized_basis"),
        "optimised for equivariance after a ReLU: the span of "
        "Hermite B functions at span_sigma, fitted on rectified smooth noise",
        arguments=("mult", "max_order", "span_sigma"),
        measured=True,
    )
)
register_basis(
    BasisKind(
        "W",
        _lazy("sesn.basis.whitened", "whitened_basis"),
        "basis R with its span re-weighted towards its sharper directions (power whiten; same kernels, "
        "another parametrisation)",
        arguments=("mult", "max_order", "span_sigma", "whiten"),
    )
)
register_basis(BasisKind(
    "DISCO", _lazy("sesn.basis.disco", "disco_basis"), "DISCO's published basis, read from its data file",
    arguments=("mult", "max_order", "disco_sigma"),
    # the one configuration DISCO publishes its basis for (its MNIST models)
    configurations={"mnist": dict(kernel_size=15, effective_size=7, scales=(1.0, 1.26, 1.59, 2.0), mult=1.5,
                                  disco_sigma=1.9)}))  # fmt: skip
