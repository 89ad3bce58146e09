"""Models of the paper (registry in :mod:`sesn.models.registry`)."""

from sesn.models.mnist_configs import MNIST_SES_CONFIGS, SESConfig

__all__ = ["MNIST_SES_CONFIGS", "SESConfig"]
