"""What produced a result: the versions of the software involved, for run records,
dataset manifests and benchmark rows."""

from __future__ import annotations

import platform


def _version(name: str):
    if name == "python":
        return platform.python_version()
    if name == "sesn":
        import sesn

        return sesn.__version__
    if name == "cuda":
        import torch

        return torch.version.cuda
    if name == "zlib":
        import zlib

        return zlib.ZLIB_RUNTIME_VERSION
    if name == "pillow":
        import PIL

        return PIL.__version__
    import importlib

    return importlib.import_module(name).__version__


def versions(*names: str) -> dict:
    """``{name: version}`` for the named packages (``sesn``, ``torch``, ``torchvision``,
    ``numpy``, ``pillow``, ``zlib``, ``python``, ``cuda``), in the order given."""
    return {n: _version(n) for n in names}
