"""Baseline methods of the paper's comparison (docs/baselines.md), one file per method:
SI-ConvNet (``si_convnet``), SiCNN (``sicnn``), SEVF (``sevf``), DSS (``dss``),
SS-CNN (``ss_cnn``)."""


def extra_layers(channels: int) -> dict:
    """One layer of the methods with vector or multi-scale internals, as T -> T maps for
    the equivariance report (7x7 / 11 kernels as in their MNIST models)."""
    from torch import nn

    from sesn.baselines.sevf import Magnitude, ScaleConvScalar
    from sesn.baselines.ss_cnn import ScaleConvSteering

    return {
        "SEVF (scalar layer, magnitude)": nn.Sequential(ScaleConvScalar(1, channels, 7, 3), Magnitude()),
        "SS-CNN (steerable layer)": ScaleConvSteering(1, channels, 11, [5, 7, 9, 11, 13], relu=False),
    }
