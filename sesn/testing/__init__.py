"""Testing a layer's equivariance: asserting helpers, the plug-in case registry, reference-anchored
verdicts, hypothesis strategies and the pytest plug-in.

* :func:`assert_equivariant`, :func:`assert_verdict` (``sesn.testing.asserts``);
* :mod:`sesn.testing.plugins`: register a user's layer as an equivariance case;
* :mod:`sesn.testing.verdict`: its verdict against the package's own layers on the same inputs;
* :mod:`sesn.testing.strategies`: the hypothesis strategies of the package's own suite;
* :mod:`sesn.testing.pytest_plugin`: ``pytest --sesn-import MODULE`` (entry point ``pytest11``);
* :mod:`sesn.testing.tolerance`: the one rule of self-measured tolerance tables.

Names are imported on first use, so that pytest loading the plug-in does not import torch.
"""

from __future__ import annotations

__all__ = ["assert_equivariant", "assert_verdict"]


def __getattr__(name):
    if name in __all__:
        from sesn.testing import asserts

        return getattr(asserts, name)
    raise AttributeError(f"module 'sesn.testing' has no attribute {name!r}")
