"""Approximate: steerable layers commute with rescale + scale shift up to a measured
tolerance (tolerances.RESCALE, from measure_tolerances.py), and beat a plain conv of the
same kernel size on the same inputs by at least MIN_ADVANTAGE_OVER_CONV."""

import torch
from hypothesis import given
from hypothesis import strategies as st

from sesn.equivariance import plain_conv_baseline, scale_equivariance
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.testing import assert_equivariant

from equivariance_tests import strategies as sst
from equivariance_tests.tolerances import MIN_ADVANTAGE_OVER_CONV, RESCALE, RESCALE_PAPER


def _layer(kind, cfg, cin, seed):
    torch.manual_seed(seed)
    pad = cfg.kernel_size // 2
    if kind == "th":
        return SESConv_Z2_H(cin, 2, padding=pad, **cfg.kwargs()).double()
    return SESConv_H_H(cin, 2, 1 if kind == "hh" else 2, padding=pad, **cfg.kwargs()).double()


def _input(kind, cfg, cin, data):
    if kind == "th":
        return data.draw(sst.smooth_images(in_channels=cin))
    return data.draw(sst.smooth_scale_features(len(cfg.scales), in_channels=cin))


def _check_rescale(kind, cfg, cin, seed, data):
    layer = _layer(kind, cfg, cin, seed)
    x = _input(kind, cfg, cin, data)
    step = data.draw(st.integers(1, len(cfg.scales) - 1), label="step")
    result = scale_equivariance(layer, x, step)
    assert_equivariant(result, RESCALE[(kind, cfg.basis_type, step)], f"{kind} basis {cfg.basis_type} {cfg}")


def _check_advantage(kind, cfg, cin, seed, data):
    layer = _layer(kind, cfg, cin, seed)
    x = _input(kind, cfg, cin, data)
    step = data.draw(st.integers(1, len(cfg.scales) - 1), label="step")
    ses = scale_equivariance(layer, x, step).delta
    conv = plain_conv_baseline(layer, x, step, generator=sst.generator(seed)).delta
    assert conv >= MIN_ADVANTAGE_OVER_CONV * ses, (
        f"{kind} {cfg}: SES Delta={ses:.3e} is not {MIN_ADVANTAGE_OVER_CONV}x below plain conv Delta={conv:.3e}"
    )


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_th_rescale_under_measured_tolerance(cfg, cin, seed, data):
    _check_rescale("th", cfg, cin, seed, data)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_rescale_under_measured_tolerance(cfg, cin, seed, data):
    _check_rescale("hh", cfg, cin, seed, data)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_interscale_rescale_under_measured_tolerance(cfg, cin, seed, data):
    _check_rescale("hh_interscale", cfg, cin, seed, data)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_th_beats_plain_conv(cfg, cin, seed, data):
    _check_advantage("th", cfg, cin, seed, data)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_beats_plain_conv(cfg, cin, seed, data):
    _check_advantage("hh", cfg, cin, seed, data)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_interscale_beats_plain_conv(cfg, cin, seed, data):
    _check_advantage("hh_interscale", cfg, cin, seed, data)


def _check_paper(kind, name, basis, cin, seed, data):
    cfg = sst.paper_config(name, basis)
    layer = _layer(kind, cfg, cin, seed)
    x = _input(kind, cfg, cin, data)
    step = data.draw(st.integers(1, len(cfg.scales) - 1), label="step")
    result = scale_equivariance(layer, x, step)
    assert_equivariant(result, RESCALE_PAPER[(name, kind, basis, step)], f"{kind} at {name} scales, basis {basis}")


@sst.keyword_safe
@given(name=sst.paper_config_names, basis=sst.basis_types, cin=sst.channels, seed=sst.seeds, data=st.data())
def test_th_rescale_paper_configs(name, basis, cin, seed, data):
    _check_paper("th", name, basis, cin, seed, data)


@sst.keyword_safe
@given(name=sst.paper_config_names, basis=sst.basis_types, cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_rescale_paper_configs(name, basis, cin, seed, data):
    _check_paper("hh", name, basis, cin, seed, data)


@sst.keyword_safe
@given(name=sst.paper_config_names, basis=sst.basis_types, cin=sst.channels, seed=sst.seeds, data=st.data())
def test_hh_interscale_rescale_paper_configs(name, basis, cin, seed, data):
    _check_paper("hh_interscale", name, basis, cin, seed, data)
