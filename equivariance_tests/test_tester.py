"""The tester is tested: deliberately broken layers must fail the checks."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from torch import nn

from sesn.equivariance import scale_equivariance, scale_shift_equivariance, translation_equivariance
from sesn.nn import SESConv_Z2_H
from sesn.testing import assert_equivariant

from equivariance_tests import strategies as sst
from equivariance_tests.tolerances import EXACT, RESCALE


class SameKernelAtEveryScale(nn.Module):
    """Looks like a T->H layer but applies one fixed kernel at every scale: no steering."""

    def __init__(self, scales, kernel_size=15):
        super().__init__()
        self.scales = list(scales)
        self.kernel = nn.Parameter(torch.randn(2, 1, kernel_size, kernel_size, dtype=torch.float64))

    def forward(self, x):
        y = F.conv2d(x, self.kernel, padding=self.kernel.shape[-1] // 2)
        return torch.stack([y] * len(self.scales), dim=2)


class PositionDependent(nn.Module):
    """A conv followed by a ramp over columns: breaks translation equivariance."""

    def forward(self, x):
        ramp = torch.linspace(0.5, 1.5, x.shape[-1], dtype=x.dtype)
        return F.avg_pool2d(x, 3, 1, 1) * ramp


class ScaleIndexBias(nn.Module):
    """Adds the scale index to every slice: breaks scale-shift equivariance."""

    def forward(self, x):
        return x + torch.arange(x.shape[2], dtype=x.dtype).view(1, 1, -1, 1, 1)


@sst.keyword_safe
@given(cfg=sst.steerable_configs(), seed=sst.seeds)
def test_tester_rejects_unsteered_layer(cfg, seed):
    torch.manual_seed(seed)
    fake = SameKernelAtEveryScale(cfg.scales)
    x = sst.smooth_random_field((2, 1, 48, 48), sst.generator(seed))
    result = scale_equivariance(fake, x, 1)
    with pytest.raises(AssertionError, match="not equivariant enough"):
        assert_equivariant(result, RESCALE[("th", cfg.basis_type, 1)], "unsteered layer")


@sst.keyword_safe
@given(dtype=sst.dtypes, seed=sst.seeds)
def test_tester_rejects_position_dependent_layer(dtype, seed):
    x = torch.randn(2, 1, 24, 24, generator=sst.generator(seed), dtype=torch.float64).to(dtype)
    err = translation_equivariance(PositionDependent(), x, (0, 3))
    with pytest.raises(AssertionError, match="not equivariant enough"):
        assert_equivariant(err, EXACT[dtype], "position-dependent layer")


@sst.keyword_safe
@given(seed=sst.seeds)
def test_tester_rejects_scale_dependent_layer(seed):
    x = torch.randn(2, 1, 4, 8, 8, generator=sst.generator(seed), dtype=torch.float64)
    with pytest.raises(AssertionError, match="not equivariant enough"):
        assert_equivariant(scale_shift_equivariance(ScaleIndexBias(), x, 1), EXACT[torch.float64], "scale-index layer")


def test_tester_report_is_readable():
    layer = SESConv_Z2_H(1, 2, 15, 7, [1.7, 2.45, 3.54, 5.1], padding=7, basis_type="B", mult=1.5).double()
    x = sst.smooth_random_field((1, 1, 48, 48), sst.generator(0))
    result = scale_equivariance(layer, x, 1)
    with pytest.raises(AssertionError) as info:
        assert_equivariant(result, 1e-12, "demo layer")
    text = str(info.value)
    assert "demo layer" in text and "scales (0, 1)" in text and "protocol" in text
    assert_equivariant(result, 1.0, "demo layer")  # passes quietly under a loose bound


def test_tester_rejects_nan():
    with pytest.raises(AssertionError):
        assert_equivariant(float("nan"), 1.0)
