"""Every compute path on purpose: the paths a layer supports (naive, direct, fft, separable)
agree on the drawn case — output, weight gradient and input gradient, float64, to round-off —
and a kernel cached in eval mode follows an in-place weight update on every path.

The property tests elsewhere draw the path too (``strategies.paths``), so each property is
checked on each path; this file is what ties the paths to one another."""

from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.cases import HypothesisDraws, check_kernel_cache, check_paths_agree, draw_layer_case
from sesn.basis.registry import measured_bases


def _case(data, kind):
    return draw_layer_case(HypothesisDraws(data), kinds=(kind,), sources=("grid", "paper"), bases=measured_bases())


@sst.keyword_safe
@given(data=st.data())
def test_th_modes_agree(data):
    check_paths_agree(_case(data, "th"))


@sst.keyword_safe
@given(data=st.data())
def test_hh_modes_agree(data):
    check_paths_agree(_case(data, "hh"))


@sst.keyword_safe
@given(data=st.data())
def test_hh_interscale_modes_agree(data):
    check_paths_agree(_case(data, "hh_interscale"))


@sst.keyword_safe
@given(data=st.data())
def test_th_kernel_cache_follows_weight_updates(data):
    check_kernel_cache(_case(data, "th"))


@sst.keyword_safe
@given(data=st.data())
def test_hh_kernel_cache_follows_weight_updates(data):
    check_kernel_cache(_case(data, "hh_interscale"))
