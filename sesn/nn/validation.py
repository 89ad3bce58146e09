"""Input validation shared by the layers: clear errors naming expected vs received shapes."""

from __future__ import annotations

import torch


def check_image_shape(shape, layer: str, channels: int | None) -> None:
    """An image ("T") shape: ``[B, C, H, W]`` with ``channels`` channels."""
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(
            f"{layer}: expected an image tensor [B, C, H, W] (rank 4), got rank {len(shape)} with shape {list(shape)}"
        )
    if channels is not None and shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got {shape[1]} (input shape {list(shape)})")


def check_scale_feature_shape(shape, layer: str, channels: int | None, scales: int | None) -> None:
    """A scale-translation ("H") shape: ``[B, C, S, H, W]`` with ``channels`` channels and ``scales`` scales."""
    shape = tuple(shape)
    if len(shape) != 5:
        raise ValueError(
            f"{layer}: expected a scale feature [B, C, S, H, W] (rank 5), got rank {len(shape)} "
            f"with shape {list(shape)}"
        )
    if channels is not None and shape[1] != channels:
        raise ValueError(f"{layer}: expected {channels} input channels, got {shape[1]} (input shape {list(shape)})")
    if scales is not None and shape[2] != scales:
        raise ValueError(f"{layer}: expected {scales} scales on axis 2, got {shape[2]} (input shape {list(shape)})")


def check_image(x: torch.Tensor, layer: str, channels: int | None) -> None:
    """An image ("T") input: ``[B, C, H, W]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected a torch.Tensor, got {type(x).__name__}")
    check_image_shape(x.shape, layer, channels)


def check_scale_feature(x: torch.Tensor, layer: str, channels: int | None, scales: int | None) -> None:
    """A scale-translation ("H") input: ``[B, C, S, H, W]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{layer}: expected a torch.Tensor, got {type(x).__name__}")
    check_scale_feature_shape(x.shape, layer, channels, scales)


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int, layer: str) -> int:
    """Spatial output size of a convolution; raises when the kernel exceeds the padded input."""
    padded = size + 2 * padding
    if padded < kernel_size:
        raise ValueError(
            f"{layer}: kernel of size {kernel_size} is larger than the padded input ({size} + 2*{padding} = {padded})"
        )
    return (padded - kernel_size) // stride + 1


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_conv_arguments(layer: str, in_channels, out_channels, stride, padding) -> None:
    """Constructor arguments of a convolution: positive int channels and stride, padding >= 0."""
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("stride", stride)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {v!r}")
    if not _is_int(padding) or padding < 0:
        raise ValueError(f"{layer}: padding must be a non-negative int, got {padding!r}")


def autocast_on(device_type: str) -> bool:
    """Whether ``torch.autocast`` is on for ``device_type`` (False for device types autocast does
    not know, e.g. ``meta``, on which :mod:`sesn.memory` runs models without data)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4: no device argument
        return torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
    except RuntimeError:  # "unknown device type for autocast"
        return False


def check_dtype(x: torch.Tensor, weight: torch.Tensor, layer: str) -> None:
    """A floating-point input of the parameters' dtype (any dtype under torch.autocast)."""
    if not x.is_floating_point():
        raise TypeError(f"{layer}: expected a floating-point input, got {x.dtype}")
    if x.dtype != weight.dtype and not autocast_on(x.device.type):
        raise TypeError(
            f"{layer}: input dtype {x.dtype} does not match the layer's parameters ({weight.dtype}); "
            "convert one of them (layer.to(dtype) or x.to(dtype)) or run under torch.autocast"
        )


def output_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a convolution of ``x`` returns: the autocast dtype under torch.autocast."""
    if autocast_on(x.device.type):
        try:
            return torch.get_autocast_dtype(x.device.type)
        except AttributeError:  # torch < 2.4
            return torch.get_autocast_gpu_dtype() if x.device.type == "cuda" else torch.get_autocast_cpu_dtype()
    return x.dtype
