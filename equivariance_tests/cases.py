"""Drawn cases and the checks that assert on them, shared by the property tests and the
per-example kill rate (``python -m equivariance_tests.mutants --per-example N``).

A *layer case* is one steerable layer (T->H, H->H with one tap, H->H with two taps) of a
configuration from the measured tolerance table, with its input, dtype and **compute path**
(naive, direct, fft, separable), every choice drawn explicitly: a property test never lets
``auto`` pick a path by timing, so what it checks does not depend on the machine. The
draws go through a small interface (:class:`HypothesisDraws` inside ``@given`` tests,
:class:`RandomDraws` for a seeded stream of cases outside hypothesis), so both see the
same space.

Each ``check_*`` function raises ``AssertionError`` when its property fails on the case.
"""

from __future__ import annotations

import dataclasses
import functools
import random

import torch
from hypothesis import strategies as st

from equivariance_tests import strategies as sst
from equivariance_tests.anchors import check_basis_is_analytic, check_separable_is_analytic
from equivariance_tests.tolerances import (
    DTYPE_NAMES,
    EXACT,
    MIN_ADVANTAGE_OVER_CONV,
    RESCALE,
    pair_tolerances,
    rescale_cases,
)
from sesn.equivariance import plain_conv_baseline, relative_error, scale_equivariance
from sesn.testing import assert_equivariant
from sesn.transforms import scale_shift

PATHS = sst.PATHS
# agreement of two compute paths in float64 (relative_error is a squared ratio: 1e-10 relative)
PATH_AGREEMENT = EXACT[torch.float64]
DTYPES = (torch.float32, torch.float64)


class HypothesisDraws:
    """Draws from hypothesis' ``st.data()`` (shrinkable, replayable from the blob)."""

    def __init__(self, data):
        self.data = data

    def choice(self, options, label: str):
        return self.data.draw(st.sampled_from(list(options)), label=label)

    def seed(self, label: str) -> int:
        return self.data.draw(sst.seeds, label=label)


class RandomDraws:
    """The same draws from a seeded ``random.Random`` (the per-example kill rate)."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def choice(self, options, label: str):
        return self.rng.choice(list(options))

    def seed(self, label: str) -> int:
        return self.rng.randrange(2**31)


@dataclasses.dataclass(frozen=True)
class LayerCase:
    kind: str  # th, hh, hh_interscale
    key: str  # configuration key of the tolerance table
    step: int  # scale step of the rescaling property
    dtype: torch.dtype
    cin: int
    layer_seed: int
    size: int
    blur: float
    input_seed: int
    path: str

    @property
    def cfg(self):
        return sst.config_by_key(self.key)

    def build(self, dtype: torch.dtype | None = None):
        """(layer on this case's path, input) in ``dtype`` (default: the case's)."""
        layer, x = sst.rescale_case(
            self.kind,
            self.cfg,
            cin=self.cin,
            layer_seed=self.layer_seed,
            size=self.size,
            blur=self.blur,
            input_seed=self.input_seed,
            dtype=dtype or self.dtype,
        )
        layer.compute_mode = self.path
        return layer, x

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.key} step {self.step} {DTYPE_NAMES[self.dtype]} path {self.path} "
            f"(cin {self.cin}, size {self.size}, blur {self.blur}, seeds {self.layer_seed}/{self.input_seed})"
        )


@functools.lru_cache(maxsize=None)
def supported_paths(kind: str, key: str) -> tuple[str, ...]:
    """The compute paths a layer of this kind and configuration can run (built once per
    process; a mutant session patches before any layer is built)."""
    layer, _ = sst.rescale_case(kind, sst.config_by_key(key), 1, 0, 40, 2.0, 0)
    return tuple(p for p in PATHS if layer.supports_mode(p))


def draw_layer_case(
    draws, kinds=sst.RESCALE_KINDS, sources=("grid",), bases: str = "AB", dtype=None, path=None, paths=None
) -> LayerCase:
    """A drawn layer case; ``path`` fixes the compute path, ``paths`` limits the drawn ones."""
    kind = draws.choice(kinds, "kind")
    source = draws.choice(sources, "source")
    key, step = draws.choice(rescale_cases(kind, source, bases=bases), "(config, step)")
    allowed = supported_paths(kind, key) if path is None else [path]
    if paths is not None:
        allowed = [p for p in allowed if p in paths] or allowed
    return LayerCase(
        kind=kind,
        key=key,
        step=step,
        dtype=draws.choice(DTYPES, "dtype") if dtype is None else dtype,
        cin=draws.choice([1, 2, 3], "cin"),
        layer_seed=draws.seed("layer seed"),
        size=draws.choice(sst.IMAGE_SIZES, "size"),
        blur=draws.choice(sst.BLURS, "blur"),
        input_seed=draws.seed("input seed"),
        path=draws.choice(allowed, "path"),
    )


# --- checks on a layer case -----------------------------------------------------------------


def rescale_steps(case: LayerCase, adjacent: bool = True) -> list[int]:
    """The scale steps a rescaling check measures: the drawn step and (``adjacent``) step 1,
    every adjacent pair, where the table can tell step 1 of this configuration from a plain conv
    in both dtypes (a bug at every other scale is invisible at even steps)."""
    steps = [case.step]
    if adjacent and case.step != 1:
        rows = [RESCALE.get((case.key, case.kind, 1, d)) for d in DTYPE_NAMES.values()]
        if all(r is not None and r.distinguishable for r in rows):
            steps.insert(0, 1)
    return steps


def check_rescale(case: LayerCase, adjacent: bool = True) -> None:
    """Rescale + scale shift at the drawn step and at step 1 (``adjacent``): overall Delta and
    every scale pair's Delta under the measured tolerances of the configuration; the tolerance
    itself below the plain conv's Delta on the same input (an anchor that does not come from the
    layer under test); and Delta <= the plain conv's Delta / R."""
    __tracebackhide__ = True
    layer, x = case.build()
    dt = DTYPE_NAMES[case.dtype]
    r = MIN_ADVANTAGE_OVER_CONV[(case.kind, case.cfg.basis_type)]
    for step in rescale_steps(case, adjacent):
        row = RESCALE[(case.key, case.kind, step, dt)]
        what = f"{case} at step {step} (working layer: median Delta {row.delta_median:.2e} over {row.draws} draws)"
        result = scale_equivariance(layer, x, step)
        assert_equivariant(result, row.tolerance, what, pair_tolerances=pair_tolerances(case.key, case.kind, step, dt))
        plain = plain_conv_baseline(layer, x, step, generator=sst.generator(case.input_seed)).delta
        assert row.tolerance < plain, (
            f"{what}: the tolerance {row.tolerance:.3e} is not below the plain conv's Delta {plain:.3e} on the same "
            "input: the table row no longer tells this layer from a plain conv"
        )
        assert result.delta <= plain / r, (
            f"{what}: Delta={result.delta:.3e} is not {r}x below the plain conv's {plain:.3e} on the same input"
        )


def _forward_backward(layer, x, path):
    layer.compute_mode = path
    layer.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_(True)
    y = layer(x)
    probe = torch.randn(y.shape, generator=torch.Generator().manual_seed(7), dtype=y.dtype)
    (y * probe).sum().backward()
    return y.detach(), layer.weight.grad.detach().clone(), x.grad.detach()


def check_paths_agree(case: LayerCase) -> None:
    """Every path the layer supports gives the naive path's output, weight gradient and input
    gradient (float64, PATH_AGREEMENT relative)."""
    __tracebackhide__ = True
    layer, x = case.build(torch.float64)
    ref = _forward_backward(layer, x, "naive")
    for path in supported_paths(case.kind, case.key):
        if path == "naive":
            continue
        got = _forward_backward(layer, x, path)
        for name, a, b in zip(("output", "weight gradient", "input gradient"), got, ref):
            err = relative_error(a, b)
            assert err <= PATH_AGREEMENT, f"{case}: path {path}'s {name} differs from naive's by {err**0.5:.2e}"


def check_kernel_cache(case: LayerCase) -> None:
    """In eval mode without autograd (where kernels are cached), a weight changed in place —
    as an optimizer step does — is seen by the next forward, on every path the layer supports."""
    __tracebackhide__ = True
    for path in supported_paths(case.kind, case.key):
        layer, x = case.build(torch.float64)
        layer.compute_mode = path
        layer.eval()
        with torch.no_grad():
            layer(x)  # fills the cache
            layer.weight.mul_(-0.5).add_(0.1)
            got = layer(x)
            fresh, _ = case.build(torch.float64)
            fresh.compute_mode = path
            fresh.load_state_dict(layer.state_dict())
            want = fresh.eval()(x)
        err = relative_error(want, got)
        assert err <= PATH_AGREEMENT, f"{case}: path {path} is stale after an in-place weight update (error {err:.2e})"


def check_exact_basis(case: LayerCase) -> None:
    """The basis the layer holds and, for the separable path, its 1-D tables equal the
    analytic Hermite family at 1e-12 (bases A and B)."""
    __tracebackhide__ = True
    cfg = case.cfg
    if cfg.basis_type not in "AB":
        return
    layer, _ = case.build(torch.float64)
    check_basis_is_analytic(layer.basis, cfg, layer.windows)
    if case.path == "separable":
        check_separable_is_analytic(cfg)


def check_structure(case: LayerCase) -> None:
    """H->H only: scale_size 1 — output slice i is the T->H lift (same weights) of input slice i
    at scale i; scale_size K — the sum over taps j of single-tap layers on the input shifted by
    j along the scale axis. Exact to round-off."""
    __tracebackhide__ = True
    if case.kind == "th":
        return
    from sesn.nn import SESConv_H_H, SESConv_Z2_H

    cfg = case.cfg
    layer, x = case.build()
    pad = cfg.kernel_size // 2
    with torch.no_grad():
        y = layer(x)
        if case.kind == "hh":
            lift = SESConv_Z2_H(case.cin, layer.out_channels, padding=pad, **cfg.kwargs()).to(case.dtype)
            lift.compute_mode = case.path
            lift.weight.copy_(layer.weight[:, :, 0])
            for i in range(len(cfg.scales)):
                err = relative_error(lift(x[:, :, i])[:, :, i], y[:, :, i])
                assert_equivariant(err, EXACT[case.dtype], f"{case}: H->H slice {i} vs the lift of input slice {i}")
        else:
            single = SESConv_H_H(case.cin, layer.out_channels, 1, padding=pad, **cfg.kwargs()).to(case.dtype)
            single.compute_mode = case.path
            expected = 0
            for j in range(layer.scale_size):
                single.weight.copy_(layer.weight[:, :, j : j + 1])
                expected = expected + single(scale_shift(x, j))
            err = relative_error(expected, y)
            assert_equivariant(err, EXACT[case.dtype], f"{case}: H->H vs the sum of its taps on shifted inputs")


LAYER_CHECKS = {
    "exact_basis": check_exact_basis,
    "paths_agree": check_paths_agree,
    "rescale": check_rescale,
    "structure": check_structure,
    "kernel_cache": check_kernel_cache,
}


# --- the layers that treat every scale alike ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScaleWiseCase:
    """A random H feature map and a scale-axis step, for batch norm, pooling, 1x1, projections."""

    dtype: torch.dtype
    seed: int
    step: int
    scales: int

    def input(self, shape=None) -> torch.Tensor:
        shape = shape or (2, 3, self.scales, 12, 12)
        g = torch.Generator().manual_seed(self.seed)
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(self.dtype)


def draw_scalewise_case(draws, steps=(-2, -1, 1, 2)) -> ScaleWiseCase:
    return ScaleWiseCase(
        dtype=draws.choice(DTYPES, "dtype"),
        seed=draws.seed("seed"),
        step=draws.choice(steps, "step"),
        scales=draws.choice([3, 4, 5], "scales"),
    )


def check_batchnorm(case: ScaleWiseCase) -> None:
    """ScaleBatchNorm in training mode is the definition: one mean and (biased) variance per
    channel over batch, scales and positions; the running statistics move by momentum towards
    them (unbiased variance); in eval mode it commutes with scale shifts exactly."""
    __tracebackhide__ = True
    from sesn.equivariance import scale_shift_equivariance
    from sesn.nn import ScaleBatchNorm

    torch.manual_seed(case.seed)
    bn = ScaleBatchNorm(3).to(case.dtype)
    torch.nn.init.normal_(bn.weight)
    torch.nn.init.normal_(bn.bias)
    x = case.input() * 2 + torch.arange(case.scales, dtype=case.dtype).view(1, 1, -1, 1, 1)  # scales differ in mean
    y = bn(x).detach()
    xd = x.double()
    mean = xd.mean(dim=(0, 2, 3, 4), keepdim=True)
    var = xd.var(dim=(0, 2, 3, 4), unbiased=False, keepdim=True)
    w, b = bn.weight.double().view(1, -1, 1, 1, 1), bn.bias.double().view(1, -1, 1, 1, 1)
    want = (xd - mean) / torch.sqrt(var + bn.eps) * w + b
    err = relative_error(y.double(), want)
    assert err <= 100 * EXACT[case.dtype], f"ScaleBatchNorm (train) differs from its definition by {err:.2e}"
    run_var = bn.momentum * xd.var(dim=(0, 2, 3, 4), unbiased=True) + (1 - bn.momentum)
    err = relative_error(bn.running_var.double(), run_var)
    assert err <= 100 * EXACT[case.dtype], f"ScaleBatchNorm running variance off its definition by {err:.2e}"
    bn.eval()
    with torch.no_grad():
        err = scale_shift_equivariance(bn, case.input(), case.step)
    assert_equivariant(err, EXACT[case.dtype], "batch norm (eval) scale shift")


def check_pooling(case: ScaleWiseCase) -> None:
    """Scale-wise pooling is 2-D pooling of each scale slice (definition) and commutes with
    scale shifts exactly."""
    __tracebackhide__ = True
    import torch.nn.functional as F

    from sesn.equivariance import scale_shift_equivariance
    from sesn.nn import ScaleAvgPool2d, ScaleMaxPool2d

    x = case.input()
    for pool, ref in ((ScaleMaxPool2d(2), F.max_pool2d), (ScaleAvgPool2d(2), F.avg_pool2d)):
        y = pool(x)
        want = torch.stack([ref(x[:, :, i], 2) for i in range(x.shape[2])], dim=2)
        assert y.shape == want.shape and torch.equal(y, want), f"{type(pool).__name__} is not 2-D pooling per scale"
        assert_equivariant(scale_shift_equivariance(pool, x, case.step), EXACT[case.dtype], "pooling scale shift")


def check_conv_1x1(case: ScaleWiseCase) -> None:
    """SESConv_H_H_1x1 is the same 1x1 conv at every scale (definition) and commutes with
    scale shifts exactly."""
    __tracebackhide__ = True
    import torch.nn.functional as F

    from sesn.equivariance import scale_shift_equivariance
    from sesn.nn import SESConv_H_H_1x1

    torch.manual_seed(case.seed)
    layer = SESConv_H_H_1x1(3, 4, bias=True)
    torch.nn.init.normal_(layer.bias)
    layer = layer.to(case.dtype)
    x = case.input()
    with torch.no_grad():
        y = layer(x)
        want = torch.stack([F.conv2d(x[:, :, i], layer.weight, layer.bias) for i in range(x.shape[2])], dim=2)
    err = relative_error(y, want)
    assert err <= EXACT[case.dtype], f"1x1 H->H differs from a 1x1 conv per scale by {err:.2e}"
    assert_equivariant(scale_shift_equivariance(layer, x, case.step), EXACT[case.dtype], "1x1 H->H scale shift")


def check_projection(case: ScaleWiseCase) -> None:
    """Max/mean projections reduce the scale axis (definition) and are invariant to cyclic
    scale shifts exactly."""
    __tracebackhide__ = True
    from sesn.equivariance import scale_shift_invariance
    from sesn.nn import SESMaxProjection, SESMeanProjection

    x = case.input()
    for proj, want in ((SESMaxProjection(), x.amax(dim=2)), (SESMeanProjection(), x.mean(dim=2))):
        y = proj(x)
        assert y.shape == want.shape, f"{type(proj).__name__}: shape {tuple(y.shape)}, expected {tuple(want.shape)}"
        err = relative_error(y, want)
        assert err <= EXACT[case.dtype], f"{type(proj).__name__} is not a reduction over scales (error {err:.2e})"
        t = abs(case.step)
        assert_equivariant(scale_shift_invariance(proj, x, t), EXACT[case.dtype], "projection under cyclic shift")


SCALEWISE_CHECKS = {
    "batchnorm": check_batchnorm,
    "pooling": check_pooling,
    "conv_1x1": check_conv_1x1,
    "projection": check_projection,
}


# --- registered models: their layers wired to their configuration ---------------------------


def model_configs() -> dict:
    """Registered MNIST-scale SESN models with a Hermite basis -> their layer configuration."""
    from sesn.models.mnist_configs import MNIST_SES_CONFIGS
    from sesn.models.tiny import TINY_SES, TINY_SES_56

    out = {"test_ses_scalar": TINY_SES, "test_ses_vector": TINY_SES, "test_ses_scalar_56": TINY_SES_56}
    out.update(MNIST_SES_CONFIGS)
    return out


@dataclasses.dataclass(frozen=True)
class ModelCase:
    name: str

    def __str__(self) -> str:
        return f"model {self.name}"


def draw_model_case(draws) -> ModelCase:
    return ModelCase(draws.choice(sorted(model_configs()), "model"))


def check_model_wiring(case: ModelCase) -> None:
    """Every steerable layer of the registered model holds the analytic basis of the model's
    own configuration (kernel, effective size, scales, basis, sub-scale ratio): a builder that
    wires a layer with other arguments fails at 1e-12, with no tolerance involved."""
    __tracebackhide__ = True
    import sesn.models as m

    c = model_configs()[case.name]
    cfg = sst.SteerableConfig(c.kernel_size, c.effective_size, tuple(c.scales), c.basis_type, c.mult)
    torch.manual_seed(0)
    model = m.get_model(case.name).double()
    layers = [mod for mod in model.modules() if hasattr(mod, "spec") and hasattr(mod, "basis")]
    assert layers, f"{case}: no steerable layer found"
    for i, layer in enumerate(layers):
        check_basis_is_analytic(layer.basis.double(), cfg, layer.windows)
        assert layer.spec.max_order == c.max_order, f"{case}: layer {i} max_order {layer.spec.max_order}"


MODEL_CHECKS = {"model_wiring": check_model_wiring}
