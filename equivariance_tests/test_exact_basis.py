"""Exact anchors: the basis every steerable layer reads equals the analytic Hermite family.

Rescaling properties measure equivariance on a pixel grid, so they carry tolerances at the
grid's own error level, and a scale entry that is a few percent wrong hides below them. The
definition itself has no such error: at every scale sigma_i the sampled function of basis
"A" is

    psi_b(u, v; sigma_i) = N_b * sigma_i**-2 * He_{n_x}(u / sigma_i) He_{n_y}(v / sigma_i)
                           * exp(-(u**2 + v**2) / (2 sigma_i**2))

on the scale's centred window (zero outside), with N_b one over the function's L2 norm at
sigma_0; basis "B" uses the sub-scales sigma_i / mult**j (orders n_x + n_y <= max_order,
repeated per sub-scale until N_b functions). These tests rebuild it independently (SciPy's
probabilists' Hermite polynomials, not the library's NumPy ones) for *every* configuration
the property tests can draw and every paper configuration, and compare it with the basis the
layers hold (``layer.basis``, built through the same call the layers use) at 1e-12 relative
to the largest value, in float64. A sigma error of 1 % at any scale changes the samples by
about 2 % of their size: no tolerance decides.
"""

from __future__ import annotations

import pytest
import torch

from equivariance_tests.anchors import (
    check_basis_is_analytic,
    check_optimized_is_anchored,
    check_separable_is_analytic,
)
from equivariance_tests.cases import ModelCase, check_model_wiring, model_configs
from equivariance_tests.strategies import PAPER_CONFIGS, all_configs, paper_config
from sesn.basis import BasisSpec, basis_tensor
from sesn.nn import SESConv_H_H, SESConv_Z2_H

CONFIGS = {cfg.key: cfg for cfg in all_configs()}
CONFIGS.update({f"{name}/{b}": paper_config(name, b) for name in PAPER_CONFIGS for b in ("A", "B")})
_check = check_basis_is_analytic


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_th_layer_basis_equals_analytic_hermite_family(key):
    cfg = CONFIGS[key]
    layer = SESConv_Z2_H(1, 1, padding=cfg.kernel_size // 2, **cfg.kwargs()).double()
    _check(layer.basis, cfg, layer.windows)


@pytest.mark.parametrize("key", sorted(CONFIGS)[::7])
def test_hh_layer_basis_equals_analytic_hermite_family(key):
    """The H -> H layer reads the same basis (every 7th configuration: the same code path)."""
    cfg = CONFIGS[key]
    layer = SESConv_H_H(1, 1, 1, padding=cfg.kernel_size // 2, **cfg.kwargs()).double()
    _check(layer.basis, cfg, layer.windows)


@pytest.mark.parametrize("key", sorted(CONFIGS))
def test_th_separable_tables_equal_analytic_hermite_family(key):
    """The separable path does not read ``layer.basis``: it builds 1-D tables from the spec.
    Multiplied out, they must be the same analytic family."""
    check_separable_is_analytic(CONFIGS[key])


@pytest.mark.parametrize("error", [0.01, -0.01])
def test_th_a_one_percent_sigma_error_at_any_scale_is_caught(monkeypatch, error):
    """Test the tester: a basis built with sigma 1 % off at one scale (each scale in turn)
    fails the exact check, with no tolerance involved."""
    import dataclasses

    from sesn.basis import basis_tensor

    cfg = CONFIGS["mnist_ses_scalar_28/B"]
    for i in range(len(cfg.scales)):
        scales = list(cfg.scales)
        scales[i] *= 1 + error
        wrong = basis_tensor(dataclasses.replace(cfg.spec, scales=tuple(scales)), torch.float64)
        right = basis_tensor(cfg.spec, torch.float64)
        wrong = torch.where(torch.arange(len(scales)).view(1, -1, 1, 1) == i, wrong, right)
        with pytest.raises(AssertionError, match=f"scale index.*{i}"):
            _check(wrong, cfg, cfg.spec.windows)


# --- the optimised bases D and R: their analytic span, exact dilations, the fit's equations --

OPTIMIZED = {f"{name}/{b}": paper_config(name, b) for name in PAPER_CONFIGS for b in ("D", "R")}
SMALL_OPTIMIZED = {
    "k7-R-1/1.5/2": BasisSpec(7, 3, (1.0, 1.5, 2.0), "R", mult=1.4),
    "k9-D-1/1.41/2": BasisSpec(9, 3, (1.0, 1.41, 2.0), "D"),
    "k9-D-dilated-1/1.41/2": BasisSpec(9, 3, (1.0, 1.41, 2.0), "D", dilate_integer=True),
    "k9-R-DISCO-scales": BasisSpec(9, 3, (1.0, 1.26, 1.59, 2.0), "R", mult=1.5),
}


@pytest.mark.parametrize("key", sorted(OPTIMIZED))
def test_th_optimized_basis_span_and_dilations_are_exact(key):
    """At every paper configuration the layer's D/R basis has its analytic span at scale 0 and
    exact dilations at integer scale ratios (the fit's equations: the small cases below)."""
    cfg = OPTIMIZED[key]
    layer = SESConv_Z2_H(1, 1, padding=cfg.kernel_size // 2, **cfg.kwargs()).double()
    check_optimized_is_anchored(layer.basis, layer.spec, normal=False)


@pytest.mark.parametrize("key", sorted(SMALL_OPTIMIZED))
def test_th_optimized_basis_solves_its_normal_equations(key):
    spec = SMALL_OPTIMIZED[key]
    check_optimized_is_anchored(basis_tensor(spec, torch.float64), spec)


def test_th_optimized_anchors_catch_planted_errors():
    """Test the tester: a D basis whose scale 0 has sigma 1 % off, an R basis whose dilated
    scale is shifted by one pixel, and a free scale 0.1 % off each fail."""
    import dataclasses

    spec = SMALL_OPTIMIZED["k9-D-1/1.41/2"]
    wrong0 = basis_tensor(dataclasses.replace(spec, scales=(1.01, 1.41, 2.0)), torch.float64)
    good = basis_tensor(spec, torch.float64)
    with pytest.raises(AssertionError, match="scale 0 differs from its analytic span"):
        check_optimized_is_anchored(torch.cat([wrong0[:, :1], good[:, 1:]], 1), spec, normal=False)
    with pytest.raises(AssertionError, match="do not solve the fit's normal equations"):
        check_optimized_is_anchored(good * torch.tensor([1.0, 1.001, 1.0]).view(1, -1, 1, 1), spec)
    r = SMALL_OPTIMIZED["k7-R-1/1.5/2"]
    shifted = basis_tensor(r, torch.float64).clone()
    shifted[:, 2] = torch.roll(shifted[:, 2], 1, dims=-1)
    with pytest.raises(AssertionError, match="is not scale 0 dilated by 2"):
        check_optimized_is_anchored(shifted, r, normal=False)


@pytest.mark.parametrize("name", sorted(model_configs()))
def test_model_layers_hold_config_basis(name):
    """Model wiring: each registered SESN model's steerable layers hold the analytic basis of
    its own configuration (kernel, effective size, scales, basis, mult, max_order)."""
    check_model_wiring(ModelCase(name))
