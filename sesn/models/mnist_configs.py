"""The paper's MNIST-scale SESN configurations (docs/models.md), as data.

Scales = ``[min_scale * q**i]``, ``q = factor**(1/(S-1))``, rounded to two decimals.
All use basis "B" with max_order 4 and effective_size 7.
"""

from __future__ import annotations

import dataclasses

from sesn.basis import paper_scales
from sesn.basis.registry import keep_arguments, spec_arguments


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
    scales and 'same' padding, and the spec arguments the basis reads
    (:mod:`sesn.basis.registry`: mult/max_order for "B", also disco_sigma for "DISCO" and
    span_sigma for "R", none for "A"), then ``overrides``; an override of ``basis_type`` drops
    the arguments the new basis does not read."""
    basis = basis_type or getattr(config, "basis_type", "A")
    kw = dict(kernel_size=config.kernel_size, effective_size=config.effective_size, scales=list(config.scales),
              padding=config.kernel_size // 2, basis_type=basis)  # fmt: skip
    kw.update(spec_arguments(basis, config))
    kw.update(overrides)
    return keep_arguments(kw["basis_type"], kw)


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
