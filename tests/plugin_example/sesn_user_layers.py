"""A user's own layers, written without this package's layer code (only its test API), as the
verdict tests and the wheel test use them from outside the repository:

* ``HermiteLift``: an independent T->H lift with the paper's basis A (Hermite-Gaussian
  functions of orders 0..E-1 per axis on a window that grows with the scale, normalised at the
  smallest scale), optionally with a sigma error at chosen scales;
* ``DilatedScaleSpace``: a DSS-like T->T layer (Gaussian scale space, a 7x7 conv dilated per
  scale, max over scales).

``register(variant)`` registers one case; importing the module registers the ones named in
``$SESN_USER_LAYERS`` (comma-separated: correct, odd_sigma, top_sigma, dss, no_steering,
physicists).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from numpy.polynomial import hermite, hermite_e
from torch import nn

from sesn.testing.plugins import register_equivariance_case

SCALES = [1.5, 2.12, 3.0, 4.24]
KERNEL, EFFECTIVE = 15, 7


def _hermite_1d(x: np.ndarray, order: int, sigma: float, physicists: bool = False) -> np.ndarray:
    # probabilists' Hermite polynomial He_n on the envelope exp(-x^2 / 2 sigma^2): the paper's
    # functions with sigma the envelope's standard deviation (physicists=True: H_n(x / sigma) on
    # the same envelope, the same span with the higher orders weighted 2^n more)
    coef = np.zeros(order + 1)
    coef[order] = 1.0
    poly = hermite.hermval if physicists else hermite_e.hermeval
    return poly(x / sigma, coef) * np.exp(-(x**2) / (2 * sigma**2)) / sigma


def hermite_a(kernel: int, effective: int, scales, sigma_error=None, physicists=False) -> np.ndarray:
    """[E*E, S, k, k]: orders (nx, ny) < E, each on the odd window int(k s / s_max) of its scale,
    normalised by its norm at the smallest scale; ``sigma_error`` {scale index: factor} builds that
    scale's functions at factor x sigma (the window stays)."""
    sigma_error = sigma_error or {}
    s_max = scales[-1]
    out = np.zeros((effective * effective, len(scales), kernel, kernel))
    for i, s in enumerate(scales):
        m = int(kernel * s / s_max) // 2 * 2 + 1
        grid = np.arange(m) - m // 2
        a = (kernel - m) // 2
        sig = s * sigma_error.get(i, 1.0)
        for b, (nx, ny) in enumerate((nx, ny) for nx in range(effective) for ny in range(effective)):
            out[b, i, a : a + m, a : a + m] = np.outer(
                _hermite_1d(grid, nx, sig, physicists), _hermite_1d(grid, ny, sig, physicists)
            )
    norms = np.sqrt((out[:, 0] ** 2).sum(axis=(-2, -1)))
    return out / norms[:, None, None, None]


class HermiteLift(nn.Module):
    """[B, C, H, W] -> [B, O, S, H, W]: one learned combination of the basis, applied at every scale."""

    def __init__(
        self, cin, cout, scales=SCALES, kernel=KERNEL, effective=EFFECTIVE, sigma_error=None, steer=True,
        physicists=False,
    ):  # fmt: skip
        super().__init__()
        self.scales, self.kernel_size = list(scales), kernel
        basis = torch.from_numpy(hermite_a(kernel, effective, scales, sigma_error, physicists))
        if not steer:  # no steering: the smallest scale's functions copied to every scale
            basis = basis[:, :1].expand_as(basis).clone()
        self.register_buffer("basis", basis.float())
        bound = 1 / math.sqrt(cin * effective * effective)
        self.weight = nn.Parameter(torch.empty(cout, cin, effective * effective).uniform_(-bound, bound))

    def forward(self, x):
        kernels = torch.einsum("oib,bskl->soikl", self.weight, self.basis.to(self.weight.dtype))
        return torch.stack([F.conv2d(x, k, padding=self.kernel_size // 2) for k in kernels], dim=2)


class DilatedScaleSpace(nn.Module):
    """DSS-like T->T: the image and its Gaussian blur (sigma 1 px), a 7x7 conv dilated 1 and 2 on
    them, max over the two scales."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 7, bias=False)
        g = torch.exp(-(torch.arange(-3, 4.0) ** 2) / 2)
        self.register_buffer("blur", (g / g.sum()))

    def forward(self, x):
        c = x.shape[1]
        k = self.blur.to(x.dtype)
        blurred = F.conv2d(x, k.view(1, 1, 1, 7).repeat(c, 1, 1, 1), padding=(0, 3), groups=c)
        blurred = F.conv2d(blurred, k.view(1, 1, 7, 1).repeat(c, 1, 1, 1), padding=(3, 0), groups=c)
        w = self.conv.weight
        y1 = F.conv2d(x, w, padding=3)
        y2 = F.conv2d(blurred, w, padding=6, dilation=2) / 4  # dilated kernel: 1/d^2 keeps the response scale
        return torch.maximum(y1, y2)


VARIANTS = {
    "correct": dict(build=lambda: HermiteLift(1, 6)),
    "odd_sigma": dict(build=lambda: HermiteLift(1, 6, sigma_error={1: 0.9, 3: 0.9})),
    "top_sigma": dict(build=lambda: HermiteLift(1, 6, sigma_error={3: 0.9})),
    "no_steering": dict(build=lambda: HermiteLift(1, 6, steer=False)),
    "physicists": dict(build=lambda: HermiteLift(1, 6, physicists=True)),
}
CASE_NAMES = {
    "correct": "user lift",
    "odd_sigma": "user lift, odd scales' sigma 10% small",
    "top_sigma": "user lift, largest sigma 10% small",
    "no_steering": "user lift, no steering",
    "physicists": "user lift, physicists' Hermite polynomials",
    "dss": "user DSS-like layer",
}


def register(variant: str):
    name = CASE_NAMES[variant]
    if variant == "dss":
        return register_equivariance_case(
            name, lambda: DilatedScaleSpace(1, 6), kind="T->T", scales=SCALES, in_channels=1, out_channels=6,
            kernel_size=7, level="method:DSS",
        )  # fmt: skip
    return register_equivariance_case(
        name, VARIANTS[variant]["build"], kind="T->H", scales=SCALES, in_channels=1, out_channels=6,
        kernel_size=KERNEL, effective_size=EFFECTIVE,
    )  # fmt: skip


for _v in [v.strip() for v in os.environ.get("SESN_USER_LAYERS", "").split(",") if v.strip()]:
    register(_v)
