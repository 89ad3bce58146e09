"""The asserting helpers of tests: `assert_equivariant` (a measured Delta under a tolerance) and
`assert_verdict` (a reference-anchored verdict passes); the measuring functions live in
:mod:`sesn.equivariance` and :mod:`sesn.testing.verdict`."""

from __future__ import annotations

from sesn.equivariance import EquivarianceResult


def assert_equivariant(
    measured, tolerance: float, what: str = "layer", protocol: str | None = None, pair_tolerances: dict | None = None
) -> None:
    """Raise ``AssertionError`` with a readable report when a measured error exceeds
    ``tolerance``. ``measured`` is a float or an :class:`EquivarianceResult`.

    Args:
        pair_tolerances: optional ``{(i, i + t): tolerance}`` for an
            :class:`EquivarianceResult`: each scale pair's own Delta must also stay under its
            bound (a steering bug often shows in a pair whose measured Delta is small even
            when another pair dominates the overall Delta).
    """
    __tracebackhide__ = True
    pair_tolerances = pair_tolerances or {}
    failed_pairs = []
    if pair_tolerances and not isinstance(measured, EquivarianceResult):
        raise TypeError("pair_tolerances needs an EquivarianceResult (per-pair Deltas), not a float")
    if isinstance(measured, EquivarianceResult) and pair_tolerances and set(pair_tolerances) != set(measured.per_pair):
        raise ValueError(
            f"pair_tolerances has pairs {sorted(pair_tolerances)}, the measurement {sorted(measured.per_pair)}"
        )
    if isinstance(measured, EquivarianceResult):
        delta = measured.delta
        lines = [f"  scale step t={measured.step}, crop={measured.crop}px"]
        for pair, d in measured.per_pair.items():
            bound = pair_tolerances.get(pair)
            mark = ""
            if bound is not None:
                mark = f" <= {bound:.3e}" if d <= bound else f" > tolerance {bound:.3e}  <-- FAILS"
                if not d <= bound:
                    failed_pairs.append(pair)
            lines.append(f"  scales {pair}: Delta={d:.3e}{mark} (factor {measured.factors[pair]:.4f})")
        detail = "\n".join(lines)
        protocol = protocol or measured.protocol
    else:
        delta = float(measured)
        detail = ""
    if not delta <= tolerance or failed_pairs:  # `not <=` also catches NaN
        if not delta <= tolerance:
            msg = f"{what} is not equivariant enough: Delta={delta:.3e} > tolerance {tolerance:.3e}"
        else:
            msg = (
                f"{what} is not equivariant enough: Delta={delta:.3e} <= {tolerance:.3e}, "
                f"but scale pair(s) {failed_pairs} exceed their tolerances"
            )
        if detail:
            msg += "\n" + detail
        if protocol:
            msg += f"\n  protocol: {protocol}"
        raise AssertionError(msg)


def assert_verdict(verdict) -> None:
    """Raise ``AssertionError`` with the verdict's message (scale pair, ratio to the anchor, to the
    best reference and to the plain conv, references used) unless ``verdict`` passed
    (:func:`sesn.testing.verdict.verdict`)."""
    __tracebackhide__ = True
    if not verdict.passed:
        raise AssertionError(verdict.message())
