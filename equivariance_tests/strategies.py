"""The suite's hypothesis strategies live in the installed package, :mod:`sesn.testing.strategies`,
so a user's own tests (and the pytest plug-in) draw from the same space; this module re-exports
them under the suite's historical import path."""

from sesn.testing.strategies import *  # noqa: F401,F403
from sesn.testing.strategies import (  # noqa: F401  (names without __all__ and private helpers the suite reads)
    _grid_by_key,
    smooth_random_field,
)
