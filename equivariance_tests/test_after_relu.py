"""Basis R stays equivariant after a ReLU (equivariance_tests/after_relu.py): T -> ReLU -> H
under both rescale protocols, against per-(configuration, protocol) measured tolerances,
and well below basis D on the same draw."""

from hypothesis import given
from hypothesis import strategies as st

from equivariance_tests import after_relu as ar
from equivariance_tests import strategies as sst
from sesn.testing import assert_equivariant


@sst.keyword_safe
@given(
    config=st.sampled_from(sorted(ar.configs())),
    protocol=st.sampled_from(["centre", "corner"]),
    seed=sst.seeds,
    channels=st.sampled_from(ar.CHANNELS),
    size=st.sampled_from(ar.SIZES),
    blur=st.sampled_from(ar.BLURS),
)
def test_hh_basis_r_after_relu(config, protocol, seed, channels, size, blur):
    row = ar.table()[(config, protocol)]
    draw = dict(seed=seed, channels=channels, size=size, blur=blur)
    delta_r = ar.measure_case(config, protocol, "R", **draw)
    what = f"T->ReLU->H basis R, {config}, rescale {protocol}, {draw}"
    assert_equivariant(delta_r, row["tolerance"], what)
    if row["ratio"]:
        delta_d = ar.measure_case(config, protocol, "D", **draw)
        assert delta_r * row["ratio"] <= delta_d, (
            f"{what}: Delta_R={delta_r:.3e} is not {row['ratio']}x below basis D's {delta_d:.3e} on the same draw"
        )
