"""Ablation models for the equivariance-accuracy frontier (docs/optimised-basis.md), as a
plug-in: ``PYTHONPATH=scripts sesn --import frontier_ablations reproduce --profile quick
--models mnist_ablation_disco_dilated_scalar_28 ...`` (``scripts/gpu-check.sh --stages
frontier-quick`` loads it). They answer two questions about the optimised bases on
mnist_ses_scalar_28 (scales 1.7 ... 5.1, ratio 3 between the first and last):

* ``mnist_ablation_disco_dilated_scalar_28``: basis D with ``dilate_integer=True`` (the
  largest scale uses the smallest one's functions dilated by 3, as basis R always does): does
  the dilation cost accuracy?
* ``mnist_ablation_sesr_span14_scalar_28``: basis R with its span at 1.4 sigma_0 instead of
  1.9 sigma_0: does a sharper span buy back accuracy?

Not part of the package: the models are asked for by name and join no profile's sweep.
"""

from __future__ import annotations

import dataclasses

from sesn.models.mnist import MNIST_PARAMS, mnist_ses_scalar
from sesn.models.mnist_configs import MNIST_SES_CONFIGS
from sesn.models.registry import register

_CFG = MNIST_SES_CONFIGS["mnist_ses_scalar_28"]


def _register(name: str, basis: str, row: str, **layer_overrides) -> None:
    cfg = dataclasses.replace(_CFG, name=name, basis_type=basis)
    meta = dict(dataset="mnist-scale", basis=basis, input_shape=(1, 28, 28), num_params=MNIST_PARAMS,
                column="28x28", row=row, reproduce_columns=("28",), profiles=(),
                note=f"mnist_ses_scalar_28 with basis {basis} and {layer_overrides} (an ablation)")  # fmt: skip
    register(name, mnist_ses_scalar, name, cfg, metadata=meta, **layer_overrides)


_register("mnist_ablation_disco_dilated_scalar_28", "D", "SESN scalar (basis D, dilated at ratio 3)",
          dilate_integer=True)  # fmt: skip
_register("mnist_ablation_sesr_span14_scalar_28", "R", "SESN scalar (basis R, span 1.4 sigma_0)",
          span_sigma=round(1.4 * _CFG.scales[0], 4))  # fmt: skip
