"""One registration per method: everything the commands need to know about a method of the
scale-generalization benchmark (docs/extending.md, "A method in every command").

A :class:`Method` carries

* ``model``: the name its benchmark model (STIR design) is registered under (``stir_*``);
* ``label``: its row label in every table and record (``"SESN (Hermite B)"``);
* ``layer``: its T -> T layer in the catalogue (:class:`sesn.models.method_layers.MethodLayer`;
  the equivariance and methods reports measure it), if it has one;
* ``stir``: the builder of its benchmark model (``stir(in_channels=, num_classes=)``); by
  default the STIR design with ``layer`` (:func:`sesn.models.stir.stir_method_net`);
* ``mnist_models``: its MNIST-scale models (registry names, built by ``sesn.models.mnist*``);
* ``basis``: the basis kind of its steerable layers ("" for none);
* ``scale_ratio``: the ratio of the largest to the smallest scale its layers cover, where the
  layers do not declare it (None: read from the layers, :func:`sesn.generalization.measure.scale_ratio`);
* ``published``: STIR's published test accuracy % per scenario (mnist domain), ``(mean, sd)``;
* ``tags``: the ``sesn generalization`` profiles whose default sweep includes it.

:func:`register_method` registers the layer in the catalogue (if not there) and the model in
the model registry (``dataset="stir"``, ``row=label``, ``basis``); profiles select methods by
tag (:func:`tagged`), reports and records read the registration (:func:`method`), never a
label string. ``sesn.models.stir_methods`` registers this package's methods.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
import types
from typing import Callable, Mapping

from torch import nn

from sesn.models import registry
from sesn.models.method_layers import METHOD_LAYERS, MethodLayer
from sesn.models.stir import STIR_INPUT, stir_method_net


@dataclasses.dataclass(frozen=True)
class Method:
    model: str
    label: str
    stir: Callable[..., nn.Module] | None = None
    layer: MethodLayer | None = None
    mnist_models: tuple[str, ...] = ()
    basis: str = ""
    scale_ratio: float | None = None
    published: Mapping[int, tuple[float, float]] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    note: str = "scale-generalization benchmark model (docs/scale-generalization.md)"

    def __post_init__(self) -> None:
        if self.stir is None and self.layer is None:
            raise ValueError(f"method {self.model!r}: give its benchmark model's builder (stir=) or its layer (layer=)")
        object.__setattr__(self, "published", types.MappingProxyType(dict(self.published)))
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "mnist_models", tuple(self.mnist_models))

    def build(self, in_channels: int = 1, num_classes: int = 10, **overrides) -> nn.Module:
        """Its benchmark model (STIR design); ``overrides`` go to the builder (e.g. ``channels``)."""
        if self.stir is not None:
            return self.stir(in_channels=in_channels, num_classes=num_classes, **overrides)
        return stir_method_net(self.layer.name, in_channels, num_classes, **overrides)

    def published_accuracy(self, scenario: int) -> float | None:
        """STIR's published mean test accuracy % in ``scenario`` (None where it has none)."""
        v = self.published.get(int(scenario))
        return None if v is None else v[0]


METHODS: dict[str, Method] = {}
_LAYERS_ADDED: dict[str, str] = {}  # catalogue layer name -> the method model that added it


def register_method(m: Method) -> Method:
    """Add a method to every command: its layer to the catalogue (the reports), its model to
    the registry (the benchmark, ``pytest bench``), its tags to the profiles. A model name
    registered twice, or a layer name the catalogue holds for another layer, is an error."""
    if m.model in METHODS:
        raise ValueError(f"method {m.model!r} is already registered")
    if m.layer is not None:
        known = METHOD_LAYERS.get(m.layer.name)
        if known is not None and known is not m.layer:
            raise ValueError(f"the catalogue already holds another layer named {m.layer.name!r}")
        if known is None:
            METHOD_LAYERS[m.layer.name] = m.layer
            _LAYERS_ADDED[m.layer.name] = m.model
    registry.register_model(
        m.model,
        dataset="stir",
        input_shape=(1, STIR_INPUT, STIR_INPUT),
        row=m.label,
        family="stir",
        basis=m.basis,
        note=m.note,
        profiles=m.tags,  # the one field both sweeps select by (sesn reproduce reads it too)
        registered_by=sys._getframe(1).f_globals.get("__name__", ""),  # who called register_method
    )(functools.partial(_build, m.model))
    METHODS[m.model] = m
    return m


def unregister_method(model: str) -> None:
    """Remove a method, its model and the catalogue layer its registration added (tests of
    plug-in methods)."""
    METHODS.pop(model, None)
    registry._REGISTRY.pop(model, None)
    for layer, owner in list(_LAYERS_ADDED.items()):
        if owner == model:
            METHOD_LAYERS.pop(layer, None)
            del _LAYERS_ADDED[layer]


def _build(name: str, **overrides) -> nn.Module:
    return METHODS[name].build(**overrides)


def methods() -> list[Method]:
    """The registered methods in registration order (profiles select by :func:`tagged`)."""
    return list(METHODS.values())


def tagged(tag: str) -> tuple[str, ...]:
    """The benchmark models a profile selects by ``tag``, in registration order: every model
    registered with ``dataset="stir"`` whose ``ModelInfo.profiles`` holds it (a method's tags,
    or a model registered directly with ``profiles=``), as ``sesn reproduce`` selects by the
    same field."""
    return tuple(n for n, i in registry._REGISTRY.items() if i.dataset == "stir" and tag in i.profiles)


def method(name: str) -> Method:
    """The registration of a benchmark model by its model name: a registered method, a model
    registered directly with ``dataset="stir"`` (its ``row`` as label), or a catalogue
    T -> T method run by its catalogue name (the name as label). Anything else is a
    ``ValueError`` naming the known ones."""
    if name in METHODS:
        return METHODS[name]
    info = registry._REGISTRY.get(name) if isinstance(name, str) else None
    if info is not None and info.dataset == "stir":
        return Method(name, info.row or name, stir=info.builder, basis=info.basis, note=info.note)
    if isinstance(name, str) and name in METHOD_LAYERS:
        return Method(name, name, layer=METHOD_LAYERS[name])
    stir_models = [n for n, i in registry._REGISTRY.items() if i.dataset == "stir"]
    known = sorted(set(stir_models) | set(METHODS) | set(METHOD_LAYERS))
    raise ValueError(f"unknown scale-generalization model {name!r}; known: {', '.join(known)}")


def stir_model(name: str, in_channels: int = 1, num_classes: int = 10) -> nn.Module:
    """A benchmark model by name (see :func:`method`)."""
    model = method(name).build(in_channels, num_classes)
    model.model_name = name
    return model
