"""Input validation shared by the layers: clear errors naming expected vs received shapes."""

from __future__ import annotations

import torch


def check_image(x: torch.Tensor, layer: str, channels: int | None) -> None:
    """An image ("T") input: ``[B, C, H, W]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(
            f"{layer}: expected an image tensor [B, C, H, W] (rank 4), got rank {x.dim()} "
            f"with shape {list(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{layer}: expected {channels} input channels, got {x.shape[1]} (input shape {list(x.shape)})"
        )


def check_scale_feature(x: torch.Tensor, layer: str, channels: int | None, scales: int | None) -> None:
    """A scale-translation ("H") input: ``[B, C, S, H, W]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 5:
        raise ValueError(
            f"{layer}: expected a scale feature [B, C, S, H, W] (rank 5), got rank {x.dim()} "
            f"with shape {list(x.shape)}"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{layer}: expected {channels} input channels, got {x.shape[1]} (input shape {list(x.shape)})"
        )
    if scales is not None and x.shape[2] != scales:
        raise ValueError(
            f"{layer}: expected {scales} scales on axis 2, got {x.shape[2]} (input shape {list(x.shape)})"
        )


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int, layer: str) -> int:
    """Spatial output size of a convolution; raises when the kernel exceeds the padded input."""
    padded = size + 2 * padding
    if padded < kernel_size:
        raise ValueError(
            f"{layer}: kernel of size {kernel_size} is larger than the padded input "
            f"({size} + 2*{padding} = {padded})"
        )
    return (padded - kernel_size) // stride + 1
