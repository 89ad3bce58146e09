"""One table of tolerances for the property tests.

Exact properties are keyed by dtype: relative squared error
``||a - b||^2 / ||a||^2`` of integer translations and scale-axis shifts of
scale-pointwise layers. The issue's bound is stated on the relative (not squared)
error: float64 <= 1e-10, float32 <= 1e-5, so the squared bounds are 1e-20 / 1e-10.

Approximate properties (rescaling on the pixel grid) are keyed by (basis, scale step)
and are *measured* numbers: ``python -m equivariance_tests.measure_tolerances`` sweeps
the strategy space of :mod:`equivariance_tests.strategies` and prints the worst Delta
per key; the bounds below are that worst case times a safety factor of ~1.5, rounded up.
"""

import torch

EXACT_RELATIVE = {torch.float64: 1e-10, torch.float32: 1e-5}
EXACT = {dtype: tol**2 for dtype, tol in EXACT_RELATIVE.items()}

# A steerable layer must be at least this many times more equivariant than a plain conv.
MIN_ADVANTAGE_OVER_CONV = 5.0

# Filled from `python -m equivariance_tests.measure_tolerances` (see its docstring for the
# protocol); keys: (layer kind, basis type, scale step).
RESCALE = {}
