"""H -> H steerable scale convolution, optionally spanning several scales."""

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
from sesn.nn.validation import check_conv_arguments, check_scale_feature, check_scale_feature_shape, conv_output_size


class SESConv_H_H(SteerableConvBase):
    r"""Scale convolution on scale-translation features (paper eq. 4, discrete).

    ``y[:, o, i] = sum_c sum_{j<K} x[:, c, i+j] * psi_{o,c,j,sigma_i}`` with K = scale_size.

    The scale axis is zero-padded with K-1 slices **at the large-scale end** (as the
    reference does), so the top K-1 output scales see fewer taps: a scale-axis shift is
    only approximately compatible there.

    Equivariance: translations, exactly. The joint rescale by sigma_i / sigma_{i+t} and
    shift by t along the scale axis, approximately.

    Warning:
        A *pure* shift along the scale axis is **not** a symmetry: the kernel at scale
        index i is built from the basis at sigma_i.

    Args:
        in_channels, out_channels: channel counts.
        scale_size: K, number of neighbouring scales each filter spans.
        kernel_size, effective_size, scales, stride, padding, bias, basis_type,
        compute_mode, memory_factor, memory_allowance, basis_kwargs: as for :class:`SESConv_Z2_H`.

    Shape:
        input ``[B, C_in, S, H, W]`` -> output ``[B, C_out, S, H', W']``.
        ``weight``: ``[C_out, C_in, scale_size, N_b]``; ``bias``: ``[C_out]``.
    """

    input_kind, output_kind = "H", "H"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        scale_size: int,
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
        check_conv_arguments("SESConv_H_H", in_channels, out_channels, stride, padding)
        spec = self.make_spec(kernel_size, effective_size, scales, basis_type, basis_kwargs)
        super().__init__(spec, compute_mode, memory_factor, memory_allowance)
        if not isinstance(scale_size, int) or scale_size < 1:
            raise ValueError(f"scale_size must be a positive int, got {scale_size!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scale_size = scale_size
        self.stride = stride
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, scale_size, self.num_funcs))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def extra_repr(self) -> str:
        return super().extra_repr() + f", scale_size={self.scale_size}"

    def full_kernel(self) -> torch.Tensor:
        """Kernels ``[C_out, C_in, scale_size, S, k, k]``: tap j at output scale i."""
        return torch.einsum("oijb,bskl->oijskl", self.weight, self.basis)

    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        check_scale_feature_shape(input_shape, "SESConv_H_H", self.in_channels, self.num_scales)
        b, _, _, h, w = input_shape
        ho = conv_output_size(h, self.kernel_size, self.stride, self.padding, "SESConv_H_H")
        wo = conv_output_size(w, self.kernel_size, self.stride, self.padding, "SESConv_H_H")
        return (b, self.out_channels, self.num_scales, ho, wo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_scale_feature(x, "SESConv_H_H", self.in_channels, self.num_scales)
        return self.dispatch(x, self.evaluate_output_shape(x.shape), self.scale_size)

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        # K-1 zero slices after the largest scale
        return F.pad(x, (0, 0, 0, 0, 0, self.scale_size - 1)) if self.scale_size > 1 else x

    def _forward_naive(self, x: torch.Tensor) -> torch.Tensor:
        b, c_in, s, h, w = x.shape
        kernel = self.full_kernel()  # [O, I, K, S, k, k]
        c_out, k = self.out_channels, self.kernel_size
        xp = self._padded(x)
        y = None
        for j in range(self.scale_size):
            xj = xp[:, :, j : j + s].transpose(1, 2).reshape(b, s * c_in, h, w)
            kj = kernel[:, :, j].permute(2, 0, 1, 3, 4).reshape(s * c_out, c_in, k, k)
            yj = F.conv2d(xj, kj, stride=self.stride, padding=self.padding, groups=s)
            y = yj if y is None else y + yj
        return y.view(b, s, c_out, y.shape[-2], y.shape[-1]).transpose(1, 2)

    def window_kernels(self) -> list[torch.Tensor]:
        """Per-scale kernels with taps folded into input channels:
        S tensors ``[C_out, scale_size * C_in, m_i, m_i]`` (tap-major)."""

        def build():
            out = []
            for i in range(self.num_scales):
                sl = self.window_slice(i)
                kern = torch.einsum("oijb,bkl->ojikl", self.weight, self.basis[:, i, sl, sl])
                out.append(
                    kern.reshape(self.out_channels, self.scale_size * self.in_channels, kern.shape[-2], kern.shape[-1])
                )
            return out

        return self.cached("windows", build)

    def _fft_plan(self, x: torch.Tensor, out_shape):
        """(cache key, the fft kernels of this layer, the :class:`SpectralPlan` for ``x``)."""
        b, c_out, s, ho, wo = out_shape
        c_in, taps, k = self.in_channels, self.scale_size, self.kernel_size
        # a taps per side only read padding and are cut; pad: the cropped kernel's padding
        a, pad, lh, lw = transform_plan(x.shape[-2], x.shape[-1], self.padding, k)
        fw = lw // 2 + 1

        def kernels():
            return self.full_kernel()[..., a : k - a, a : k - a]  # [O, I, K, S, k', k']

        def kernel_matrix(kern):  # [O, I, K, S, k', k'] -> [S, F, 2 O, 2 I*K]
            kern = fft_precision(kern).permute(3, 0, 1, 2, 4, 5).reshape(s, c_out, c_in * taps, *kern.shape[-2:])
            return kernel_product_matrix(kern, lh, lw)

        def input_matrix(xc):
            # all scale slices (and the K-1 zero slices after the largest) in one rfft2 call
            spec = spectrum(self._padded(xc), lh, lw)  # [Bc, I, S+K-1, Lh, Fw, 2]
            win = spec.unfold(2, taps, 1)  # [Bc, I, S, Lh, Fw, 2, K]
            return win.permute(2, 3, 4, 5, 1, 6, 0).reshape(s, lh * fw, 2 * c_in * taps, xc.shape[0])

        def output(y, bc):  # y: [S, F, (re/im, O), Bc]
            y = inverse(y.view(s, lh, fw, 2, c_out * bc), lh, lw, ho, wo, pad)  # [S, Ho, Wo, O*Bc]
            return y.view(s, ho, wo, c_out, bc).permute(4, 3, 0, 1, 2)

        def output_adjoint(g):
            bc = g.shape[0]
            gi = g.permute(2, 3, 4, 1, 0).reshape(s, ho, wo, c_out * bc)
            return inverse_adjoint(gi, lh, lw, ho, wo, pad).view(s, lh * fw, 2 * c_out, bc)

        size = fft_precision(x[:0]).element_size()
        chunks = batch_chunks(b, item_bytes(lh, lw, ho, wo, s, c_out, c_in * taps, c_out, size))
        plan = SpectralPlan(kernel_matrix, input_matrix, output, output_adjoint, chunks)
        return ("fft", lh, lw, a), kernels, plan

    def _forward_separable(self, x: torch.Tensor) -> torch.Tensor:
        t = self.separable_tables()
        weight = self.cached("separable", lambda: self.weight * t.scale)  # [O, C_in, K, N_b]
        return separable_conv(x, weight, t, self.kernel_size, self.stride, self.padding, self.scale_size)

    def _forward_direct(self, x: torch.Tensor) -> torch.Tensor:
        # taps i..i+K-1 of scale i folded into channels, tap-major (the zero slices after the
        # largest scale are skipped with their kernel channels)
        return scalewise_conv(x, self.window_kernels(), self.kernel_size, self.stride, self.padding, self.scale_size)
