"""The reference-anchored verdict on a user's layer (sesn.testing.verdict): an independent,
correct implementation of basis A passes; the same layer with a 10 % sigma error at odd scales,
or at the largest scale only, fails with a message naming the scale pair and the ratio to the
reference; a DSS-like T->T layer passes the level of its family; the levels parse and refuse
what they cannot judge; reference numbers are cached per configuration and never read a
tolerance file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sesn.testing import assert_verdict
from sesn.testing.plugins import CASES, register_equivariance_case, unregister_equivariance_case
from sesn.testing.verdict import Level, ReferenceCache, VerdictError, parse_level, verdict

sys.path.insert(0, str(Path(__file__).parent / "plugin_example"))
import sesn_user_layers as U  # noqa: E402

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def cases():
    made = {v: U.register(v) for v in ("correct", "odd_sigma", "top_sigma", "no_steering", "dss")}
    yield made
    for c in made.values():
        unregister_equivariance_case(c.name)


@pytest.fixture(scope="module")
def cache():
    return ReferenceCache(None)  # memory only: the test measures, never reads a user's cache


def test_an_independent_correct_basis_a_lift_passes(cases, cache):
    for seed in SEEDS:
        v = verdict(cases["correct"], seed, cache=cache)
        assert_verdict(v)
        assert v.level == Level("reference") and 0 < v.worst_ratio() < 2
        assert {p.step for p in v.pairs} >= {1}  # step 1 always


@pytest.mark.parametrize("variant,pair", [("odd_sigma", None), ("top_sigma", (2, 3))])
def test_a_ten_percent_sigma_error_fails_naming_the_pair_and_the_ratio(cases, cache, variant, pair):
    for seed in SEEDS:
        v = verdict(cases[variant], seed, cache=cache)
        assert not v.passed
        msg = v.message()
        assert "FAILS at step 1, scale pair (" in msg and "x the worst reference (SESN basis" in msg, msg
        if pair is not None:  # the largest scale only: the pairs that do not touch it pass
            failing = {p.pair for p in v.failures}
            assert pair in failing and all(3 in p for p in failing), msg
        with pytest.raises(AssertionError, match="scale pair"):
            assert_verdict(v)


def test_no_steering_fails_far_above_the_reference(cases, cache):
    v = verdict(cases["no_steering"], 0, cache=cache)
    assert not v.passed and v.worst_ratio() > 20


def test_a_dss_like_layer_passes_its_family_level_and_is_ranked(cases, cache):
    v = verdict(cases["dss"], 0, cache=cache)
    assert v.level == parse_level("method:DSS") and v.passed, v.message()
    rank, of = v.rank[1]
    assert of == len(v.references) + 1 and 1 <= rank <= of
    assert "rank among the layer catalogue" in v.message()
    strict = verdict(cases["dss"], 0, level="rank:1", cache=cache)  # not the most equivariant method
    assert not strict.passed and "FAILS at step 1: rank" in strict.message()


def test_the_correct_lift_fails_when_anchored_to_an_optimised_basis(cases, cache):
    """A Hermite A layer is 10-100x less equivariant than basis D: the level reference:D fails it,
    so the anchor matters (the default, the worst basis, is the one a Hermite layer can claim)."""
    assert not verdict(cases["correct"], 0, level="reference:D", cache=cache).passed
    assert not verdict(cases["correct"], 0, level="reference:best", cache=cache).passed


def test_levels_parse_and_refuse():
    assert parse_level("reference") == Level("reference", 2.0, "worst")
    assert parse_level("reference:best:3") == Level("reference", 3.0, "best")
    assert parse_level("reference:d") == Level("reference", 2.0, "D")
    assert parse_level("method:DSS:1.5") == Level("method", 1.5, method="DSS")
    assert parse_level("rank:4").rank == 4
    for bad in ("reference:Q", "reference:-1", "rank:0", "method", "nonsense", "regression:2"):
        with pytest.raises(VerdictError, match="verdict level"):
            parse_level(bad)


def test_a_case_that_cannot_be_judged_at_its_level_is_refused(cache):
    with pytest.raises(ValueError, match="effective_size"):
        register_equivariance_case("no eff", lambda: U.HermiteLift(1, 6), "T->H", U.SCALES, 1, 6, 15)
    assert "no eff" not in CASES
    case = register_equivariance_case(
        "tt at reference", lambda: U.DilatedScaleSpace(1, 6), "T->T", U.SCALES, 1, 6, 7, level="method:DSS"
    )
    try:
        with pytest.raises(VerdictError, match="T->T"):
            verdict(case, 0, level="reference", cache=cache)
        with pytest.raises(VerdictError, match="unknown catalogue method"):
            verdict(case, 0, level="method:NoSuchMethod", cache=cache)
    finally:
        unregister_equivariance_case(case.name)


def test_references_are_cached_per_configuration_and_a_stale_file_is_remeasured(cases, tmp_path, monkeypatch):
    monkeypatch.setenv("SESN_PLUGIN_TOLERANCES", str(tmp_path / "no-such-file.csv"))  # never read here
    first = ReferenceCache(tmp_path)
    a = verdict(cases["correct"], 5, cache=first)
    assert first.misses == 1 and first.hits == 0
    (path,) = tmp_path.glob("*.json")
    data = json.loads(path.read_text())
    assert data["configuration"]["scales"] == U.SCALES and data["configuration"]["effective_size"] == U.EFFECTIVE
    second = ReferenceCache(tmp_path)
    b = verdict(cases["correct"], 5, cache=second)
    assert second.hits == 1 and [p.delta for p in a.pairs] == [p.delta for p in b.pairs]
    assert [p.anchor for p in a.pairs] == [p.anchor for p in b.pairs]
    data["fingerprint"] = "stale"
    path.write_text(json.dumps(data))
    third = ReferenceCache(tmp_path)
    verdict(cases["correct"], 5, cache=third)
    assert third.misses == 1  # another code version: measured again, not trusted
