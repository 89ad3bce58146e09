"""Asserting helpers for tests (the measuring functions live in :mod:`sesn.equivariance`)."""

from __future__ import annotations

from sesn.equivariance import EquivarianceResult


def assert_equivariant(measured, tolerance: float, what: str = "layer", protocol: str | None = None) -> None:
    """Raise ``AssertionError`` with a readable report when a measured error exceeds
    ``tolerance``. ``measured`` is a float or an :class:`EquivarianceResult`."""
    __tracebackhide__ = True
    if isinstance(measured, EquivarianceResult):
        delta = measured.delta
        lines = [f"  scale step t={measured.step}, crop={measured.crop}px"]
        for pair, d in measured.per_pair.items():
            lines.append(f"  scales {pair}: Delta={d:.3e} (factor {measured.factors[pair]:.4f})")
        detail = "\n".join(lines)
        protocol = protocol or measured.protocol
    else:
        delta = float(measured)
        detail = ""
    if not delta <= tolerance:  # also catches NaN
        msg = f"{what} is not equivariant enough: Delta={delta:.3e} > tolerance {tolerance:.3e}"
        if detail:
            msg += "\n" + detail
        if protocol:
            msg += f"\n  protocol: {protocol}"
        raise AssertionError(msg)
