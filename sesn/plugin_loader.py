"""Plug-ins: a user's own layers, methods and models, defined in their own modules, joining
every command without editing this package (docs/extending.md).

A plug-in is any importable module that registers things when imported:
``sesn.models.registry.register`` (a model; with ``row``/``reproduce_columns`` it joins
``sesn reproduce``, with ``dataset="stir"`` ``sesn generalization``),
``sesn.models.method.register_method`` (a method: its layer in both reports and the
benchmarks' layer group, its model in the generalization benchmark and the profiles its tags
name; ``sesn.models.method_layers.register_method_layer`` adds a catalogue layer alone) and
``sesn.testing.plugins.register_equivariance_case`` (the property tests). Three ways
to load one, all equivalent:

* ``--import MODULE`` on any ``sesn`` command (repeatable, or comma-separated);
* the environment variable ``SESN_IMPORT=mod1,mod2`` (also read by ``pytest bench`` and
  ``pytest equivariance_tests``);
* a Python entry point in the group ``sesn.plugins`` of an installed package
  (``[project.entry-points."sesn.plugins"] mine = "mypkg.methods"``), loaded automatically.
"""

from __future__ import annotations

import importlib

from sesn import settings

ENTRY_POINT_GROUP = "sesn.plugins"
ENV = "SESN_IMPORT"
_loaded: list[str] = []


def _split(values) -> list[str]:
    out = []
    for v in values:
        out += [m.strip() for m in str(v).split(",") if m.strip()]
    return out


def load_plugins(modules=(), entry_points: bool = True) -> list[str]:
    """Import ``modules``, those named in ``$SESN_IMPORT`` and the ``sesn.plugins`` entry
    points (each once); returns the names loaded so far. A module that cannot be imported
    is a ``ValueError`` naming it."""
    names = _split(modules) + settings.plugin_modules()
    for name in names:
        if name in _loaded:
            continue
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ValueError(
                f"plug-in {name!r} cannot be imported: {e} (is its folder on PYTHONPATH or the package installed?)"
            ) from e
        _loaded.append(name)
    if entry_points:
        from importlib.metadata import entry_points as eps

        for ep in eps(group=ENTRY_POINT_GROUP):
            key = f"entry point {ep.name} = {ep.value}"
            if key in _loaded:
                continue
            ep.load()
            _loaded.append(key)
    return list(_loaded)


def pop_import_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """Take ``--import MODULE`` / ``--import=MODULE`` out of a command line -> (modules, rest)."""
    modules, rest, i = [], [], 0
    while i < len(argv):
        a = argv[i]
        if a == "--import":
            if i + 1 >= len(argv):
                raise ValueError("--import needs a module name, e.g. --import mypkg.methods")
            modules.append(argv[i + 1])
            i += 2
            continue
        if a.startswith("--import="):
            modules.append(a.split("=", 1)[1])
        else:
            rest.append(a)
        i += 1
    return modules, rest
