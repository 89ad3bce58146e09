"""The paper's MNIST-scale SESN configurations (docs/models.md), as data.

Scales = ``[min_scale * q**i]``, ``q = factor**(1/(S-1))``, rounded to two decimals.
All use basis "B" with max_order 4 and effective_size 7.
"""

from __future__ import annotations

import dataclasses

from sesn.basis import paper_scales


@dataclasses.dataclass(frozen=True)
class SESConfig:
    name: str
    num_scales: int
    factor: float
    min_scale: float
    mult: float
    kernel_size: int
    effective_size: int = 7
    basis_type: str = "B"
    max_order: int = 4

    @property
    def scales(self) -> tuple[float, ...]:
        return paper_scales(self.num_scales, self.factor, self.min_scale)

    @property
    def upsample(self) -> bool:
        return self.name.endswith(("_56", "_56p"))


def layer_kwargs(config, basis_type: str | None = None, **overrides) -> dict:
    """Constructor arguments of a steerable layer with ``config``'s kernel, effective size,
    scales and 'same' padding, and the basis' own arguments: mult/max_order for "B" (and
    "DISCO", which also takes disco_sigma, and "R", which also takes span_sigma), none for
    "A"/"D". ``config`` is any object with those attributes (an :class:`SESConfig`, a test's
    configuration, DISCO's settings)."""
    basis = basis_type or getattr(config, "basis_type", "A")
    kw = dict(kernel_size=config.kernel_size, effective_size=config.effective_size, scales=list(config.scales),
              padding=config.kernel_size // 2, basis_type=basis)  # fmt: skip
    if basis in ("B", "DISCO", "R"):
        kw.update(mult=config.mult, max_order=getattr(config, "max_order", 4))
    if basis == "DISCO":
        kw.update(disco_sigma=getattr(config, "disco_sigma", 1.9))
    if basis == "R" and getattr(config, "span_sigma", None) is not None:
        kw.update(span_sigma=config.span_sigma)
    kw.update(overrides)
    if kw["basis_type"] != "R":
        kw.pop("span_sigma", None)
    if kw["basis_type"] not in ("B", "DISCO", "R"):  # an override to A/D drops B's arguments
        kw.pop("mult", None)
        kw.pop("max_order", None)
    if kw["basis_type"] != "DISCO":
        kw.pop("disco_sigma", None)
    return kw


MNIST_SES_CONFIGS = {
    c.name: c
    for c in [
        SESConfig("mnist_ses_scalar_28", 4, 3.0, 1.7, 1.5, 15),
        SESConfig("mnist_ses_scalar_28p", 4, 3.0, 1.5, 1.4, 13),
        SESConfig("mnist_ses_scalar_56", 3, 2.0, 2.0, 1.4, 15),
        SESConfig("mnist_ses_scalar_56p", 3, 3.0, 1.0, 1.4, 17),
        SESConfig("mnist_ses_vector_28", 3, 3.0, 1.5, 1.5, 13),
        SESConfig("mnist_ses_vector_28p", 3, 3.0, 1.5, 1.4, 15),
        SESConfig("mnist_ses_vector_56", 4, 2.0, 2.0, 1.5, 15),
        SESConfig("mnist_ses_vector_56p", 4, 2.0, 1.5, 1.4, 13),
    ]
}
