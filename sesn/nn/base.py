"""The contract of a scale-equivariant module.

Every layer of :mod:`sesn.nn` and every baseline layer (:mod:`sesn.baselines`) derives from
:class:`ScaleEquivariantModule` and says three things about itself:

* ``input_kind`` and ``output_kind``: ``"T"`` for an image-like feature
  ``[B, C, H, W]`` (translation only), ``"H"`` for a scale-translation feature
  ``[B, C, S, H, W]``. The equivariance measurement picks its protocol from these
  (:func:`sesn.equivariance.scale_equivariance`: plain rescale for T -> T, rescale plus
  scale-axis shift for T -> H and H -> H, rescale with invariance on the scale axis for H -> T).
* ``evaluate_output_shape(input_shape)``: the output shape for an input shape, without
  running the layer (models use it to size their heads; the tests compare it with the
  real output).
* ``compute_modes``: the evaluation paths it has. Each mode ``m`` other than ``"auto"``
  is a method ``_forward_<m>``; a module with more than one mode has a settable
  ``compute_mode`` attribute, and every mode must give the same outputs up to round-off
  (``tests/test_layers.py`` and ``tests/test_compute_modes.py`` check that for each module
  that declares several).

A user's own layer joins every measurement by deriving from this class; the subclass check
below fails at class creation (not at the first forward) when a declaration is missing.
"""

from __future__ import annotations

import abc
from typing import ClassVar

from torch import nn

KINDS = ("T", "H")


class ScaleEquivariantModule(nn.Module, abc.ABC):
    """Abstract base: declare ``input_kind``, ``output_kind`` and ``compute_modes`` as class
    attributes and implement :meth:`evaluate_output_shape` (see the module docstring).

    Intermediate abstract classes pass ``abstract=True`` in the class statement
    (``class MyBase(ScaleEquivariantModule, abstract=True)``) to defer the checks to their
    concrete subclasses.
    """

    input_kind: ClassVar[str]
    output_kind: ClassVar[str]
    compute_modes: ClassVar[tuple[str, ...]] = ("default",)

    def __init_subclass__(cls, abstract: bool = False, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if abstract:
            return
        for attr in ("input_kind", "output_kind"):
            value = getattr(cls, attr, None)
            if value not in KINDS:
                raise TypeError(f"{cls.__name__}.{attr} must be one of {KINDS}, got {value!r}")
        modes = cls.compute_modes
        if not modes or not all(isinstance(m, str) for m in modes):
            raise TypeError(f"{cls.__name__}.compute_modes must be a non-empty tuple of names, got {modes!r}")
        if len(modes) > 1:
            missing = [m for m in modes if m != "auto" and not callable(getattr(cls, f"_forward_{m}", None))]
            if missing:
                raise TypeError(f"{cls.__name__} declares compute modes {missing} without _forward_<mode> methods")

    @abc.abstractmethod
    def evaluate_output_shape(self, input_shape) -> tuple[int, ...]:
        """Output shape for ``input_shape`` (a tuple or ``torch.Size``)."""

    @property
    def kind(self) -> str:
        """``"T->H"``, ``"H->H"``, ``"H->T"`` or ``"T->T"``."""
        return f"{self.input_kind}->{self.output_kind}"
