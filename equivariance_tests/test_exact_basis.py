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

from equivariance_tests.anchors import check_basis_is_analytic, check_separable_is_analytic
from equivariance_tests.strategies import PAPER_CONFIGS, all_configs, paper_config
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
