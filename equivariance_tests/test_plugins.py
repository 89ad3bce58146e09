"""Property tests of plug-in layers (sesn/testing/plugins.py): every registered case,
fresh weights and inputs per example, within its measured tolerance and (T->H, H->H) below a
plain conv on the same input. No cases are registered by this package itself."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sesn.testing.plugins import CASES, read_tolerances, tolerances_path


def _cases(kind):
    cases = [c for c in CASES.values() if c.kind == kind]
    return pytest.mark.parametrize("case", cases, ids=[f"p{i}" for i in range(len(cases))])


def _check(case, seed):
    table = read_tolerances()
    missing = [step for step in range(1, len(case.scales)) if (case.name, step) not in table]
    if missing:
        pytest.fail(
            f"plug-in case {case.name!r}: no measured tolerance for steps {missing} in {tolerances_path()}; "
            "measure them with "
            "`python -m sesn.testing.plugins measure --import <your module> --out FILE` "
            "and set SESN_PLUGIN_TOLERANCES=FILE"
        )
    from sesn.testing.plugins import measure

    for step, (delta, plain) in measure(case, seed).items():
        row = table[(case.name, step)]
        assert delta <= row["tolerance"], (
            f"{case.name} step {step}: Delta {delta:.3g} > measured tolerance {row['tolerance']:.3g}"
        )
        if case.kind != "T->T":
            assert row["tolerance"] < row["plain_min"], (
                f"{case.name} step {step}: its tolerance is not below a plain conv's Delta"
            )
            assert delta < plain, (
                f"{case.name} step {step}: Delta {delta:.3g} not below the plain conv's {plain:.3g} on the same input"
            )


SEEDS = st.integers(min_value=100, max_value=2**20)  # draws other than the 0..7 the tolerances came from


def _property(case):
    """The hypothesis property, built inside the test: the test function itself carries no
    hypothesis attributes, whose names pytest's -k would match ('...pothesis' has 'th')."""

    @given(seed=SEEDS)
    def prop(seed):
        _check(case, seed)

    prop()


@_cases("T->H")
def test_th_plugin_layer_inside_its_measured_tolerance(case):
    _property(case)


@_cases("H->H")
def test_hh_plugin_layer_inside_its_measured_tolerance(case):
    _property(case)


@_cases("T->T")
def test_tt_plugin_layer_inside_its_measured_tolerance(case):
    _property(case)
