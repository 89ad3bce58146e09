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
  was published for; ``fixed``: the basis exists at those configurations only (a published
  file);
* ``label`` and ``describe``: how the reports name it (``"Hermite B"``), and its row label
  at a configuration with its parameters (``"Hermite B (mult 1.5)"``).

The reports loop over :func:`report_bases` (every kind available at a configuration), so a
registered basis shows up in each of them; the tolerance tables and the verdict's references
use :func:`measured_bases`.

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

R_SPAN_RATIO = 1.9  # basis "R": default span_sigma / sigma_0 (DISCO: sigma_min 1.9 at smallest scale 1)
W_DEFAULT_POWER = 0.5  # basis "W": default whiten (chosen on the frontier, docs/optimised-basis.md)
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
    fixed: bool = False
    label: str = ""
    describe: Callable[[object], str] | None = None

    @property
    def title(self) -> str:
        """How the reports name the basis (``label``, default ``"basis <name>"``)."""
        return self.label or f"basis {self.name}"

    def row_label(self, config) -> str:
        """Its row label at ``config`` (an object with the spec arguments as attributes)."""
        return self.describe(config) if self.describe is not None else self.title

    def available_at(self, config) -> bool:
        """Whether it can be built at ``config``'s scales (always, unless ``fixed``)."""
        if not self.fixed:
            return True
        scales = [round(float(s), 6) for s in config.scales]
        return any([round(float(s), 6) for s in c["scales"]] == scales for c in self.configurations.values())

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


def report_bases(config=None) -> list[BasisKind]:
    """The kinds the reports measure, in registration order: every registered one, those
    ``fixed`` to named configurations only where ``config`` is one of them (none without a
    ``config``)."""
    return [k for k in BASES.values() if (not k.fixed if config is None else k.available_at(config))]


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


def _span_sigma(config) -> float:
    """Basis R's span_sigma at ``config``: its own, else the default ratio times sigma_0."""
    return getattr(config, "span_sigma", None) or R_SPAN_RATIO * float(config.scales[0])


_HERMITE = "sesn.basis.hermite"
register_basis(
    BasisKind(
        "A",
        _lazy(_HERMITE, "hermite_basis"),
        "Hermite-Gaussian functions, orders 0..effective_size-1 per axis",
        separable=_lazy(_HERMITE, "separable_factors"),
        measured=True,
        label="Hermite A",
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
        label="Hermite B",
        describe=lambda c: f"Hermite B (mult {c.mult})",
    )
)
register_basis(
    BasisKind(
        "D",
        _lazy("sesn.basis.optimized", "optimized_basis"),
        "optimised for equivariance (DISCO-style, one linear solve) from Hermite A functions",
        arguments=("dilate_integer",),
        measured=True,
        label="optimised D",
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
        label="optimised R",
        describe=lambda c: f"optimised R (span_sigma {_span_sigma(c):.3g})",
    )
)
register_basis(
    BasisKind(
        "W",
        _lazy("sesn.basis.whitened", "whitened_basis"),
        "basis R with its span re-weighted towards its sharper directions (power whiten; same kernels, "
        "another parametrisation)",
        arguments=("mult", "max_order", "span_sigma", "whiten"),
        label="optimised W",
        describe=lambda c: f"optimised W (whiten {getattr(c, 'whiten', None) or W_DEFAULT_POWER:g}, R's span)",
    )
)
register_basis(BasisKind(
    "DISCO", _lazy("sesn.basis.disco", "disco_basis"), "DISCO's published basis, read from its data file",
    arguments=("mult", "max_order", "disco_sigma"), fixed=True, label="DISCO (its published basis)",
    # the one configuration DISCO publishes its basis for (its MNIST models)
    configurations={"mnist": dict(kernel_size=15, effective_size=7, scales=(1.0, 1.26, 1.59, 2.0), mult=1.5,
                                  disco_sigma=1.9)}))  # fmt: skip
