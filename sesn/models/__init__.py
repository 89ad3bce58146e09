"""Models of the paper, registered under the reference names.

>>> import sesn.models as m
>>> m.list_models("mnist_ses_*")[:2]
['mnist_ses_scalar_28', 'mnist_ses_scalar_28p']
"""

from sesn.models.mnist_configs import MNIST_SES_CONFIGS, SESConfig
from sesn.models.registry import ModelInfo, count_parameters, get_model, get_model_info, list_models, register_model

# model families register themselves on import (the registry module imports none of them)
from sesn.models import disco, mnist, mnist_baselines, stir_methods, tiny, wrn, wrn_baselines  # noqa: E402, F401  isort: skip

__all__ = [
    "MNIST_SES_CONFIGS",
    "ModelInfo",
    "SESConfig",
    "count_parameters",
    "get_model",
    "get_model_info",
    "list_models",
    "register_model",
]
