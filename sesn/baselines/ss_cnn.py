"""SS-CNN (Ghosh & Gupta 2019, "Scale steerable filters for locally scale-invariant
convolutional neural networks"), as in the SESN comparison (docs/baselines.md):
log-radial harmonics, a scale-dependent complex phase, and a max over kernel sizes.

Deliberate deviations ([fix ok]): ``np.arctan2`` and the Euclidean distance replace the
removed SciPy calls (identical values); unused arguments are not accepted; ``.to()`` on
the layer works (the reference's ``_apply`` returned None). Kept for the counts: the
basis as non-trainable parameters ``filter_real``/``filter_imag`` and the unused
``const_real``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.base import ScaleEquivariantModule


def log_radial_harmonic(m: int, k: float, phi0: float, sigma: float, phase: float, basis_scale: float = 1.0):
    """(psi_re, psi_im) on an m x m grid, each divided by its Frobenius norm."""
    c = (m - 1) / 2
    i, j = np.meshgrid(np.arange(m), np.arange(m), indexing="ij")
    raw = np.sqrt((i - c) ** 2 + (j - c) ** 2)
    mask = (raw <= c).astype(np.float64)
    r = raw.copy()
    r[int(c), int(c)] = 1.0
    r = basis_scale * r
    phi = np.arctan2(j - c, c - i)
    phi[int(c), int(c)] = 0.0
    d = np.minimum.reduce(
        [np.abs(phi - phi0), np.abs(phi + 2 * np.pi - phi0), np.abs(phi - phi0 - np.pi), np.abs(phi + np.pi - phi0)]
    )
    amp = np.exp(-(d**2) / (2 * sigma**2)) / r
    kappa = 2 * np.pi * k / np.log(np.sqrt(2) * c * basis_scale)
    re = amp * np.cos(kappa * np.log(r) + phase) * mask
    im = amp * np.sin(kappa * np.log(r) + phase) * mask
    return re / np.linalg.norm(re), im / np.linalg.norm(im), kappa


class ScaleConvSteering(ScaleEquivariantModule):
    """``out = max_i conv2d(x, W_i, padding (m_i - 1) / 2)`` (+ ReLU), with W_i the real
    part of the complex combination of the basis cropped to m_i, phase-shifted by
    ``exp(-i kappa_k log s_i)``, s_i = m_i / kernel_size."""

    input_kind, output_kind = "T", "T"

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        b, _, h, w = input_shape
        return (b, self.out_channels, (h - 1) // self.stride + 1, (w - 1) // self.stride + 1)

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        ker_size_range,
        k_range=(0.5, 1, 2),
        phi_range=None,
        sigma_phi_range=(math.pi / 16,),
        phase_range=(-math.pi / 4,),
        basis_scale=(1.0,),
        stride=1,
        relu=True,
    ):
        super().__init__()
        phi_range = list(np.linspace(0, np.pi, 9)) if phi_range is None else list(phi_range)
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.ker_size_range, self.stride, self.relu = list(ker_size_range), stride, relu
        m = self.ker_size_range[-1]
        re_all, im_all, kappas = [], [], []
        for k in k_range:
            re_k, im_k = [], []
            for phi0 in phi_range:
                for sg in sigma_phi_range:
                    for ph in phase_range:
                        for b in basis_scale:
                            re, im, kappa = log_radial_harmonic(m, k, phi0, sg, ph, b)
                            re_k.append(re)
                            im_k.append(im)
            re_all.append(np.stack(re_k, -1))
            im_all.append(np.stack(im_k, -1))
            kappas.append(kappa)
        self.num_funcs = re_all[0].shape[-1]
        self.filter_real = nn.Parameter(
            torch.tensor(np.stack(re_all), dtype=torch.float32), requires_grad=False
        )  # [|k|, M, M, N_b]
        self.filter_imag = nn.Parameter(torch.tensor(np.stack(im_all), dtype=torch.float32), requires_grad=False)
        self.register_buffer("kappa", torch.tensor(kappas, dtype=torch.float32), persistent=False)
        bound = math.sqrt(2.0 / (self.num_funcs * in_channels * out_channels))
        self.mult_real = nn.Parameter(
            torch.empty(len(k_range), out_channels, in_channels, self.num_funcs).uniform_(-bound, bound)
        )
        self.mult_imag = nn.Parameter(
            torch.empty(len(k_range), out_channels, in_channels, self.num_funcs).uniform_(-bound, bound)
        )
        self.const_real = nn.Parameter(
            torch.empty(out_channels, in_channels).uniform_(-1e-5, 1e-5)
        )  # unused, as in the reference

    def kernels(self) -> list[torch.Tensor]:
        m = self.ker_size_range[-1]
        out = []
        for mi in self.ker_size_range:
            theta = self.kappa * math.log(mi / self.kernel_size)  # [|k|]
            cos, sin = torch.cos(theta).view(-1, 1, 1, 1), torch.sin(theta).view(-1, 1, 1, 1)
            a = self.mult_real * cos + self.mult_imag * sin
            b = self.mult_imag * cos - self.mult_real * sin
            lo = (m - mi) // 2
            re = self.filter_real[:, lo : lo + mi, lo : lo + mi]
            im = self.filter_imag[:, lo : lo + mi, lo : lo + mi]
            out.append(torch.einsum("koin,kxyn->oixy", a, re) - torch.einsum("koin,kxyn->oixy", b, im))
        return out

    def forward(self, x):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ScaleConvSteering: expected [B, {self.in_channels}, H, W], got {list(x.shape)}")
        ys = [F.conv2d(x, w, stride=self.stride, padding=(w.shape[-1] - 1) // 2) for w in self.kernels()]
        y = torch.stack(ys, 0).max(0).values
        return F.relu(y) if self.relu else y
