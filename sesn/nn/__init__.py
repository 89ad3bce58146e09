"""Scale-equivariant layers (one per file). Names and signatures follow the reference
code, so model code ports by changing an import."""

from sesn.nn.batchnorm import ScaleBatchNorm
from sesn.nn.conv_h_h import SESConv_H_H
from sesn.nn.conv_h_h_1x1 import SESConv_H_H_1x1
from sesn.nn.conv_z2_h import SESConv_Z2_H
from sesn.nn.pooling import ScaleAvgPool2d, ScaleMaxPool2d
from sesn.nn.projection import SESMaxProjection, SESMeanProjection
from sesn.nn.steerable import COMPUTE_MODES

__all__ = [
    "COMPUTE_MODES",
    "SESConv_H_H",
    "SESConv_H_H_1x1",
    "SESConv_Z2_H",
    "SESMaxProjection",
    "SESMeanProjection",
    "ScaleAvgPool2d",
    "ScaleBatchNorm",
    "ScaleMaxPool2d",
]
