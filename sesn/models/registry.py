"""Model registry (torchvision style) with the paper's model names.

``register_model`` raises on a duplicate name (timm only warns; a silent override would
let two builders hide behind one name). Each entry carries metadata: the expected number
of trainable parameters (a test recomputes it), the dataset and column of the paper's
table, the published number where docs/models.md has one, and the command that reproduces it.

Where a model sits in the tables of ``sesn reproduce`` is registry metadata too: ``row``
(the table's row label), ``reproduce_columns`` (the column keys it fills: ``"28"``,
``"28+"``, ``"56"``, ``"56+"`` for MNIST-scale, ``"STL-10"``) and ``profiles`` (the
profiles whose default sweep includes it: ``sesn reproduce``'s for its datasets, ``sesn
generalization``'s for ``dataset="stir"``, where a method's tags put them; any model with a
row and columns can be asked for by name with ``--models``). :func:`register` is the one helper the model
modules use: it registers ``functools.partial(factory, *args, **kwargs)``, so a builder is
a named function with bound arguments, never a lambda.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
from typing import Callable

from torch import nn


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str
    builder: Callable[..., nn.Module]
    dataset: str
    input_shape: tuple[int, int, int]
    num_params: int | None = None
    column: str | None = None
    row: str | None = None
    published: tuple[float, float] | None = None  # test error % (mean, std)
    published_source: str | None = None
    reproduce: str | None = None
    family: str = ""
    note: str = ""
    reproduce_columns: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    registered_by: str = ""  # the module that registered it (a plug-in's, or sesn.models.*)
    basis: str = ""  # the steerable basis kind its layers use ("" for models without one)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d.pop("builder")
        return d


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str | None = None, **metadata):
    """Decorator: register a builder under ``name`` (default: the function's name)."""

    def wrap(fn):
        key = name or fn.__name__
        if key in _REGISTRY:
            raise ValueError(f"model {key!r} is already registered")
        metadata.setdefault("registered_by", _caller_module())
        _REGISTRY[key] = ModelInfo(name=key, builder=fn, **metadata)
        return fn

    return wrap


def register(name: str, factory: Callable[..., nn.Module], /, *args, metadata: dict, **kwargs) -> ModelInfo:
    """Register ``functools.partial(factory, *args, **kwargs)`` under ``name`` with
    ``metadata`` (the :class:`ModelInfo` fields); ``get_model(name, **overrides)`` calls it
    with the overrides merged over ``kwargs``."""
    register_model(name, **{"registered_by": _caller_module(), **metadata})(functools.partial(factory, *args, **kwargs))
    return _REGISTRY[name]


def _caller_module() -> str:
    """The first module outside this one on the call stack (who is registering)."""
    import sys

    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def plugin_models() -> list[str]:
    """Models registered by modules outside this package (plug-ins)."""
    return [n for n, i in _REGISTRY.items() if i.registered_by and not i.registered_by.startswith("sesn.")]


def table_models(dataset: str, profile: str | None = None) -> list[ModelInfo]:
    """Models placed in ``sesn reproduce``'s table for ``dataset`` (registration order);
    with ``profile``, only those in that profile's default sweep."""
    return [
        info
        for info in _REGISTRY.values()
        if info.dataset == dataset
        and info.row
        and info.reproduce_columns
        and (profile is None or profile in info.profiles)
    ]


def _lookup(name: str) -> ModelInfo:
    _check_name(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ValueError(f"unknown model {name!r}{hint}. See sesn.models.list_models().") from None


def get_model_info(name: str) -> ModelInfo:
    return _lookup(name)


def _check_name(name) -> None:
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string naming a registered model (see list_models()), got {name!r}")


def get_model(name: str, **overrides) -> nn.Module:
    """Build a registered model; ``overrides`` go to its builder (e.g. ``num_classes``)."""
    info = _lookup(name)
    model = info.builder(**overrides)
    model.model_name = name
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a glob ``pattern``."""
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters, the reference's count (``requires_grad``, used or not)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
