"""Model registry (torchvision style) with the paper's model names.

``register_model`` raises on a duplicate name (timm only warns; a silent override would
let two builders hide behind one name). Each entry carries metadata: the expected number
of trainable parameters (a test recomputes it), the dataset and column of the paper's
table, the published number where docs/models.md has one, and the command that reproduces it.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
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
        _REGISTRY[key] = ModelInfo(name=key, builder=fn, **metadata)
        return fn

    return wrap


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


