"""The rescaling check shared by the property tests of every basis."""

from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.tolerances import DTYPE_NAMES, MIN_ADVANTAGE_OVER_CONV, RESCALE, pair_tolerances, rescale_cases
from sesn.equivariance import plain_conv_baseline, scale_equivariance
from sesn.testing import assert_equivariant


def check_rescale_case(kind, source, data, bases="AB", dtype=None):
    """One rescaling case drawn from the measured table: the overall Delta and every scale
    pair's Delta under their tolerances, and Delta <= plain conv Delta / R on the same input."""
    key, step = data.draw(st.sampled_from(rescale_cases(kind, source, bases=bases)), label="(config, step)")
    dtype = data.draw(sst.dtypes, label="dtype") if dtype is None else dtype
    cfg = sst.config_by_key(key)
    layer, x = sst.rescale_case(
        kind,
        cfg,
        cin=data.draw(sst.channels, label="cin"),
        layer_seed=data.draw(sst.seeds, label="layer seed"),
        size=data.draw(sst.image_sizes, label="size"),
        blur=data.draw(sst.blurs, label="blur"),
        input_seed=(input_seed := data.draw(sst.seeds, label="input seed")),
        dtype=dtype,
    )
    row = RESCALE[(key, kind, step, DTYPE_NAMES[dtype])]
    what = (
        f"{kind} {key} step {step} {DTYPE_NAMES[dtype]} "
        f"(working layer: median Delta {row.delta_median:.2e} over {row.draws} draws)"
    )
    result = scale_equivariance(layer, x, step)
    assert_equivariant(
        result, row.tolerance, what, pair_tolerances=pair_tolerances(key, kind, step, DTYPE_NAMES[dtype])
    )
    plain = plain_conv_baseline(layer, x, step, generator=sst.generator(input_seed)).delta
    r = MIN_ADVANTAGE_OVER_CONV[(kind, cfg.basis_type)]
    assert result.delta <= plain / r, (
        f"{what}: Delta={result.delta:.3e} is not {r}x below the plain conv's {plain:.3e} on the same input"
    )
