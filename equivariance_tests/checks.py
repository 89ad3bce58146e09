"""The rescaling check shared by the property tests of every basis."""

from equivariance_tests.cases import HypothesisDraws, check_rescale, draw_layer_case


def check_rescale_case(kind, source, data, bases="AB", dtype=None):
    """One rescaling case drawn from the measured table, on a drawn compute path: the overall
    Delta and every scale pair's Delta under their tolerances, and Delta <= plain conv Delta / R
    on the same input (:func:`equivariance_tests.cases.check_rescale`)."""
    check_rescale(draw_layer_case(HypothesisDraws(data), kinds=(kind,), sources=(source,), bases=bases, dtype=dtype))
