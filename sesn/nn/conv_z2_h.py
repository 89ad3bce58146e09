"""T -> H steerable scale convolution (paper: Z2 -> H)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sesn.nn.fft_conv import (
    SpectralPlan,
    batch_chunks,
    fft_precision,
    inverse,
    inverse_adjoint,
    item_bytes,
    kernel_product_matrix,
    spectrum,
    transform_plan,
)
from sesn.nn.functional import scalewise_conv
from sesn.nn.separable import separable_conv
from sesn.nn.steerable import MEMORY_ALLOWANCE, MEMORY_FACTOR, SteerableConvBase
from sesn.nn.validation import check_conv_arguments, check_image, check_image_shape, conv_output_size


class SESConv_Z2_H(SteerableConvBase):
    r"""Lift an image to a scale-translation feature with one steerable filter per
    channel pair, applied at every scale.

    ``y[:, o, i] = sum_c x[:, c] * psi_{o,c,sigma_i}`` with
    ``psi_{o,c,sigma} = sum_b w[o, c, b] * basis[b, sigma]`` (docs/bases-and-layers.md).

    Equivariance: translations, exactly. Rescaling the input by a = sigma_i / sigma_{i+t}
    maps output scale i+t to scale i: ``Phi(L_a f)[i] = L_a Phi(f)[i+t]``.

    Warning:
        The scale equivariance is exact only in the continuum; on the pixel grid it is
        approximate (interpolation, aliasing, truncated windows). Its error is measured
        by :mod:`sesn.equivariance`, not assumed.

    Args:
        in_channels, out_channels: channel counts.
        kernel_size: odd side k of the largest-scale kernel.
        effective_size: sqrt of the number of basis functions N_b.
        scales: increasing scales sigma_0 < ... < sigma_{S-1}.
        stride, padding: as for ``conv2d``.
        bias: one bias per output channel, shared by all scales.
        basis_type: "A" or "B" (docs/bases-and-layers.md); ``basis_kwargs`` (mult, max_order) for "B".
        compute_mode: "auto" (default), "direct", "fft", "naive" or "separable", see
            :class:`SteerableConvBase`.
        memory_factor, memory_allowance: the memory rule of "auto" under autograd
            (:mod:`sesn.nn.dispatch`): no path keeping more than ``memory_factor`` x the least
            kept bytes, or peaking above both that factor and ``memory_allowance`` bytes
            over the least peak (``memory_factor=inf``: time alone).

    Shape:
        input ``[B, C_in, H, W]`` -> output ``[B, C_out, S, H', W']``.
        ``weight``: ``[C_out, C_in, N_b]``; ``bias``: ``[C_out]``.
    """

    input_kind, output_kind = "T", "H"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        effective_size: int,
        scales=(1.0,),
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
        basis_type: str = "A",
        compute_mode: str = "auto",
        memory_factor: float = MEMORY_FACTOR,
        memory_allowance: int = MEMORY_ALLOWANCE,
        **basis_kwargs,
    ) -> None:
        check_conv_arguments("SESConv_Z2_H", in_channels, out_channels, stride, padding)
        spec = self.make_spec(kernel_size, effective_size, scales, basis_type, basis_kwargs)
        super().__init__(spec, compute_mode, memory_factor, memory_allowance)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, self.num_funcs))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def full_kernel(self) -> torch.Tensor:
        """Kernels at every scale, ``[C_out, C_in, S, k, k]``."""
        return torch.einsum("oib,bskl->oiskl", self.weight, self.basis)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        check_image_shape(input_shape, "SESConv_Z2_H", self.in_channels)
        b, _, h, w = input_shape
        ho = conv_output_size(h, self.kernel_size, self.stride, self.padding, "SESConv_Z2_H")
        wo = conv_output_size(w, self.kernel_size, self.stride, self.padding, "SESConv_Z2_H")
        return (b, self.out_channels, self.num_scales, ho, wo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image(x, "SESConv_Z2_H", self.in_channels)
        return self.dispatch(x, self.evaluate_output_shape(x.shape), 1)

    def _forward_naive(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.full_kernel()  # [C_out, C_in, S, k, k]
        c_out, c_in, s, k, _ = kernel.shape
        kernel = kernel.transpose(1, 2).reshape(c_out * s, c_in, k, k)
        y = F.conv2d(x, kernel, stride=self.stride, padding=self.padding)
        return y.view(x.shape[0], c_out, s, y.shape[-2], y.shape[-1])

    def window_kernels(self) -> list[torch.Tensor]:
        """Per-scale kernels cropped to their windows: S tensors ``[C_out, C_in, m_i, m_i]``."""

        def build():
            out = []
            for i in range(self.num_scales):
                sl = self.window_slice(i)
                out.append(torch.einsum("oib,bkl->oikl", self.weight, self.basis[:, i, sl, sl]))
            return out

        return self.cached("windows", build)

    def _fft_plan(self, x: torch.Tensor, out_shape):
        """(cache key, the fft kernels of this layer, the :class:`SpectralPlan` for ``x``)."""
        b, c_out, s, ho, wo = out_shape
        c_in, k = self.in_channels, self.kernel_size
        # a taps per side only read padding and are cut; pad: the cropped kernel's padding
        a, pad, lh, lw = transform_plan(x.shape[-2], x.shape[-1], self.padding, k)
        fw = lw // 2 + 1

        def kernels():
            return self.full_kernel().transpose(1, 2)[..., a : k - a, a : k - a]  # [O, S, I, k', k']

        def kernel_matrix(kern):  # [O, S, I, k', k'] -> [F, 2 O*S, 2 I]
            kern = fft_precision(kern).reshape(1, c_out * s, c_in, *kern.shape[-2:])
            return kernel_product_matrix(kern, lh, lw)[0]

        def input_matrix(xc):
            spec = spectrum(xc, lh, lw)  # [Bc, I, Lh, Fw, 2]
            return spec.permute(2, 3, 4, 1, 0).reshape(lh * fw, 2 * c_in, xc.shape[0])  # [F, (re/im, I), Bc]

        def output(y, bc):  # y: [F, (re/im, O, S), Bc]
            y = inverse(y.view(1, lh, fw, 2, c_out * s * bc), lh, lw, ho, wo, pad)  # [1, Ho, Wo, O*S*Bc]
            return y.view(ho, wo, c_out, s, bc).permute(4, 2, 3, 0, 1)

        def output_adjoint(g):
            bc = g.shape[0]
            gi = g.permute(3, 4, 1, 2, 0).reshape(1, ho, wo, c_out * s * bc)
            return inverse_adjoint(gi, lh, lw, ho, wo, pad).view(lh * fw, 2 * c_out * s, bc)

        size = fft_precision(x[:0]).element_size()
        chunks = batch_chunks(b, item_bytes(lh, lw, ho, wo, 1, c_out * s, c_in, c_out * s, size))
        plan = SpectralPlan(kernel_matrix, input_matrix, output, output_adjoint, chunks)
        return ("fft", lh, lw, a), kernels, plan

    def _forward_separable(self, x: torch.Tensor) -> torch.Tensor:
        t = self.separable_tables()
        weight = self.cached("separable", lambda: (self.weight * t.scale).unsqueeze(2))  # [O, C_in, 1, N_b]
        return separable_conv(x, weight, t, self.kernel_size, self.stride, self.padding)

    def _forward_direct(self, x: torch.Tensor) -> torch.Tensor:
        return scalewise_conv(x, self.window_kernels(), self.kernel_size, self.stride, self.padding)
