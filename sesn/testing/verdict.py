"""A verdict on a user's layer anchored to references the package builds, not to the layer itself.

For one drawn example (a seed: the user's layer's weights and a smooth random input; a scale
step) the user's Delta is measured **per scale pair**, at the drawn step and always at step 1
(every adjacent pair), as the mean over ``USER_DRAWS`` weight draws of the layer (one draw
alone puts 0.3 % of a correct layer's examples above 2 x the anchor, measured), beside
*references* on the very same input and steps:

* T->H and H->H layers: this package's steerable layers (``SESConv_Z2_H`` /
  ``SESConv_H_H``) at the case's declared scales, kernel size, effective size (and
  ``scale_size``), one per measured basis of :mod:`sesn.basis.registry` (A, B, D, R),
  each with ``REFERENCE_DRAWS`` weight draws (per pair the largest Delta of its draws), and
  a plain ``k x k`` conv;
* T->T layers: the methods of the layer catalogue (:mod:`sesn.models.method_layers`), the
  CNN among them, at the rescale factors sigma_i / sigma_(i+t) of the declared scales.

A :class:`Level` says what the layer claims; the verdict fails above it:

``reference`` (default for T->H / H->H; spelled ``reference[:ANCHOR][:F]``, ANCHOR ``worst``
(default), ``best`` or a measured basis such as ``D``)
    at every judged pair, Delta <= F x the anchor at that pair (the worst or the best of the
    package's bases, or the named one), and below the plain conv. Default F = 2, anchor worst:
    a layer that claims to be a steerable scale convolution must be about as equivariant as
    the least equivariant of the package's own, correct bases at its configuration (Hermite A
    and B are legitimate SESN layers, so the best anchor, an optimised basis 10-100x better,
    would fail them); F = 2 leaves room for the layer's own weight draw, while a 10 % sigma
    error raises a pair's Delta 10-40x (docs/equivariance-tests.md has the measured power).
    A layer that reimplements an optimised basis claims it by name (``reference:D``).
    A pair where the anchor is not below half the plain conv's Delta tells nothing about
    steering; it is reported as *not judged* (the layer must still be below the plain conv
    there).
``method:NAME[:F]`` (T->T; default ``method:CNN:1`` for T->T cases)
    at every pair, Delta <= F x the catalogue method NAME's Delta at that pair (largest of
    its draws): a layer of another family (DSS, SI-ConvNet, ...) is at least about as
    equivariant as this package's implementation of the method it says it is.
``rank:K`` (T->T)
    at every step, the layer's Delta (mean over pairs) ranks among the K smallest of the
    catalogue's methods plus the layer.
``regression``
    the rule of earlier versions, kept for a layer with no reference: Delta under a
    tolerance measured *on the layer itself* (``python -m sesn.testing.plugins measure``)
    and below a plain conv. It catches a change, not an equivariance error; the tolerance
    file is read only at this level.

Every verdict states the user's Delta per step and pair as a ratio to the anchor, to the
best reference and to the plain conv, and names the references it used. Reference
measurements are cached per configuration (in memory, and as JSON under
``$SESN_CACHE/references``, keyed by the configuration, the input's parameters and a
fingerprint of the measuring code and of the reference bases).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
from pathlib import Path
from typing import Callable

import torch
from torch import nn

import sesn.equivariance
import sesn.transforms
from sesn import settings as sesn_settings
from sesn.basis.registry import keep_arguments, measured_bases
from sesn.equivariance import plain_conv_baseline, rescale_equivariance, scale_equivariance
from sesn.io import atomic_write_text
from sesn.models.method_layers import METHOD_LAYERS
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.testing.tolerance import read_tolerances, tolerances_path
from sesn.transforms import smooth_random_field

REFERENCE_FACTOR = 2.0
METHOD_FACTOR = 2.0
REFERENCE_DRAWS = 3
USER_DRAWS = 3  # weight draws of the user's layer per example, per pair their mean
# a reference pair tells steering apart from a plain conv only if its Delta is below this
# share of the plain conv's on the same input
JUDGED_BELOW_PLAIN = 0.5
BLURS = (1.5, 2.0, 2.5)
BATCH = 2
LEVEL_NAMES = ("reference", "method", "rank", "regression")


class PlainShape(nn.Module):
    """What :func:`plain_conv_baseline` reads from a layer: scales, kernel and channel counts
    (of an :class:`~sesn.testing.plugins.EquivarianceCase`)."""

    def __init__(self, case):
        super().__init__()
        self.scales, self.kernel_size = list(case.scales), case.kernel_size
        self.in_channels, self.out_channels = case.in_channels, case.out_channels


class VerdictError(ValueError):
    """A case whose declaration cannot give the verdict it asks for."""


@dataclasses.dataclass(frozen=True)
class Level:
    """What a case claims (see the module docstring)."""

    name: str
    factor: float = REFERENCE_FACTOR
    anchor: str = "worst"  # reference level: "worst" or "best" of the package's bases
    method: str | None = None  # method level: the catalogue method
    rank: int | None = None  # rank level: among the K smallest

    def describe(self, kind: str = "T->H") -> str:
        if self.name == "reference":
            which = (
                f"the {self.anchor} of the package's bases"
                if self.anchor in ("worst", "best")
                else (f"the package's basis {self.anchor}")
            )
            return f"reference: Delta <= {self.factor:g} x {which} at every judged scale pair, and below a plain conv"
        if self.name == "method":
            return f"method {self.method}: Delta <= {self.factor:g} x the catalogue's {self.method} at every scale pair"
        if self.name == "rank":
            return f"rank {self.rank}: among the {self.rank} most equivariant of the layer catalogue at every step"
        return "regression: Delta under a tolerance measured on this layer itself, and below a plain conv"

    def __str__(self) -> str:
        if self.name == "reference":
            return "reference" + ("" if self.anchor == "worst" else f":{self.anchor}") + f":{self.factor:g}"
        if self.name == "method":
            return f"method:{self.method}:{self.factor:g}"
        if self.name == "rank":
            return f"rank:{self.rank}"
        return "regression"


def parse_level(level) -> Level:
    """A :class:`Level` from its spelling (``"reference"``, ``"reference:best:3"``,
    ``"method:DSS"``, ``"method:DSS:1.5"``, ``"rank:5"``, ``"regression"``) or a Level."""
    if isinstance(level, Level):
        return level
    text = str(level).strip()
    parts = text.split(":")
    name = parts[0]
    try:
        if name == "reference":
            rest = parts[1:]
            anchor = "worst"
            if rest and not _is_number(rest[0]):
                anchor, rest = rest[0], rest[1:]
                if anchor not in ("worst", "best"):
                    from sesn.basis.registry import measured_bases

                    if anchor.upper() not in measured_bases():
                        raise ValueError
                    anchor = anchor.upper()
            factor = float(rest[0]) if rest else REFERENCE_FACTOR
            if len(rest) > 1:
                raise ValueError
            out = Level("reference", factor, anchor)
        elif name == "method":
            if len(parts) not in (2, 3) or not parts[1]:
                raise ValueError
            out = Level("method", float(parts[2]) if len(parts) == 3 else METHOD_FACTOR, method=parts[1])
        elif name == "rank":
            if len(parts) != 2:
                raise ValueError
            out = Level("rank", rank=int(parts[1]))
            if out.rank < 1:
                raise ValueError
        elif name == "regression" and len(parts) == 1:
            out = Level("regression")
        else:
            raise ValueError
    except ValueError:
        raise VerdictError(
            f"unknown verdict level {text!r}; one of: reference[:worst|:best|:BASIS][:F] (BASIS a measured basis), "
            "method:NAME[:F], rank:K, regression"
        ) from None
    if not (math.isfinite(out.factor) and out.factor > 0):
        raise VerdictError(f"verdict level {text!r}: the factor must be a positive number")
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def default_level(kind: str) -> Level:
    return Level("reference") if kind != "T->T" else Level("method", 1.0, method="CNN")


# --- one example's input and the measurement of a layer on it --------------------------------


@dataclasses.dataclass(frozen=True)
class Example:
    """One drawn example: the seed fixes the user's weights, the input and its blur."""

    seed: int
    step: int  # the drawn scale step (step 1 is always measured too)

    @property
    def steps(self) -> tuple[int, ...]:
        return tuple(sorted({1, self.step}))


def example_input(case, seed: int) -> torch.Tensor:
    s = len(case.scales)
    shape = (
        (BATCH, case.in_channels, s, case.size, case.size)
        if case.kind == "H->H"
        else (BATCH, case.in_channels, case.size, case.size)
    )
    return smooth_random_field(shape, torch.Generator().manual_seed(10_000 + seed), blur=BLURS[seed % len(BLURS)])


def measure_pairs(layer: Callable, x: torch.Tensor, kind: str, scales, step: int) -> dict[tuple[int, int], float]:
    """``{(i, i + step): Delta}`` of ``layer`` on ``x``: the joint rescale + scale shift for T->H
    and H->H (:func:`sesn.equivariance.scale_equivariance`), the plain rescale by
    sigma_i / sigma_(i+step) for T->T."""
    scales = list(scales)
    if kind == "T->T":
        return {
            (i, i + step): rescale_equivariance(layer, x, scales[i] / scales[i + step])
            for i in range(len(scales) - step)
        }
    return dict(scale_equivariance(layer, x, step, scales).per_pair)


def _worst(dicts: list[dict]) -> dict:
    return {p: max(d[p] for d in dicts) for p in dicts[0]}


# --- references -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Reference:
    """A layer the package builds for a case's configuration: ``build(seed)`` -> module."""

    name: str
    build: Callable[[int], nn.Module]
    draws: int
    role: str  # "basis", "plain" or "method"


def _steerable_references(case) -> list[Reference]:

    if case.effective_size is None:
        raise VerdictError(
            f"case {case.name!r}: level reference needs effective_size= (basis functions per axis) in "
            "register_equivariance_case, so the package can build its own layers at the same configuration; "
            "or claim another level"
        )
    refs = []
    for basis in measured_bases():
        kw = keep_arguments(
            basis,
            dict(
                kernel_size=case.kernel_size,
                effective_size=case.effective_size,
                scales=list(case.scales),
                basis_type=basis,
                padding=case.kernel_size // 2,
                **dict(case.basis_kwargs),
            ),
        )

        def build(seed, kw=kw):
            torch.manual_seed(seed)
            if case.kind == "T->H":
                layer = SESConv_Z2_H(case.in_channels, case.out_channels, **kw)
            else:
                layer = SESConv_H_H(case.in_channels, case.out_channels, case.scale_size, **kw)
            layer.compute_mode = "direct" if layer.supports_mode("direct") else "naive"
            return layer

        refs.append(Reference(f"SESN basis {basis}", build, REFERENCE_DRAWS, "basis"))
    return refs


def _method_references(case) -> list[Reference]:

    refs = []
    for name, m in METHOD_LAYERS.items():

        def build(seed, m=m):
            torch.manual_seed(seed)
            return m.layer(case.out_channels, case.in_channels)

        refs.append(Reference(name, build, REFERENCE_DRAWS, "method"))
    return refs


def references(case, level: Level) -> list[Reference]:
    """The references a verdict at ``level`` measures for ``case``."""
    if case.kind == "T->T":
        if level.name == "reference":
            raise VerdictError(
                f"case {case.name!r} is T->T: the package has no T->T steerable layer to anchor to; claim "
                "method:NAME (a catalogue method of your layer's family) or rank:K"
            )
        refs = _method_references(case)
        if level.name == "method":
            names = [r.name for r in refs]
            if level.method not in names:
                raise VerdictError(f"case {case.name!r}: unknown catalogue method {level.method!r}; known: {names}")
            if level.name == "method":
                refs = [r for r in refs if r.name == level.method] + [r for r in refs if r.name != level.method]
        return refs
    if level.name in ("method", "rank"):
        raise VerdictError(
            f"case {case.name!r} is {case.kind}: the catalogue's methods are T->T; claim reference or regression"
        )
    return _steerable_references(case)


def _fingerprint(case, refs: list[Reference]) -> str:
    """What the cached reference numbers depend on: the measuring code and the references' bases."""

    h = hashlib.sha256()
    for mod in (sesn.equivariance, sesn.transforms):
        h.update(inspect.getsource(mod).encode())
    h.update(inspect.getsource(measure_references).encode())
    for r in refs:
        layer = r.build(0)
        basis = getattr(layer, "basis", None)
        h.update(r.name.encode())
        if isinstance(basis, torch.Tensor):
            h.update(basis.double().cpu().numpy().tobytes())
        else:
            h.update(type(layer).__qualname__.encode())
    return h.hexdigest()[:16]


class ReferenceCache:
    """Reference measurements per configuration: in memory, and on disk as one JSON file per
    configuration under ``folder`` (default ``$SESN_CACHE/references``; None: memory only)."""

    def __init__(self, folder: Path | None | str = "default"):
        self.folder = sesn_settings.cache_dir() / "references" if folder == "default" else folder
        self._files: dict[str, dict] = {}
        self._fingerprints: dict[str, str] = {}
        self.hits = self.misses = 0

    @staticmethod
    def configuration(case, level: Level) -> dict:
        return dict(
            kind=case.kind,
            scales=list(case.scales),
            in_channels=case.in_channels,
            out_channels=case.out_channels,
            kernel_size=case.kernel_size,
            effective_size=case.effective_size,
            scale_size=case.scale_size,
            size=case.size,
            basis_kwargs=sorted(dict(case.basis_kwargs).items()),
            references="methods" if case.kind == "T->T" else "bases",
            draws=REFERENCE_DRAWS,
        )

    def _key(self, case, level) -> str:
        text = json.dumps(self.configuration(case, level), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _file(self, key: str, case, level, refs) -> dict:
        if key in self._files:
            return self._files[key]
        fp = _fingerprint(case, refs)
        data = None
        path = self.folder / f"{key}.json" if self.folder is not None else None
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = None
            if not isinstance(data, dict) or data.get("fingerprint") != fp:
                data = None
        if data is None:
            data = {"configuration": self.configuration(case, level), "fingerprint": fp, "entries": {}}
        self._files[key] = data
        return data

    def get(self, case, level, refs, seed: int, steps) -> dict | None:
        key = self._key(case, level)
        entry = self._file(key, case, level, refs)["entries"].get(f"{seed}:{','.join(map(str, steps))}")
        if entry is None or not all(r.name in entry for r in refs):
            self.misses += 1
            return None
        self.hits += 1
        return {
            name: {int(t): {_pair(p): v for p, v in d.items()} for t, d in per.items()} for name, per in entry.items()
        }

    def put(self, case, level, refs, seed: int, steps, measured: dict) -> None:
        key = self._key(case, level)
        data = self._file(key, case, level, refs)
        entry = data["entries"].setdefault(f"{seed}:{','.join(map(str, steps))}", {})
        for name, per in measured.items():
            entry[name] = {str(t): {f"{p[0]}-{p[1]}": v for p, v in d.items()} for t, d in per.items()}
        if self.folder is not None:
            try:
                atomic_write_text(self.folder / f"{key}.json", json.dumps(data, sort_keys=True))
            except OSError:  # a read-only cache folder only costs time
                pass


def _pair(text: str) -> tuple[int, int]:
    i, j = text.split("-")
    return int(i), int(j)


_DEFAULT_CACHE: ReferenceCache | None = None


def default_cache() -> ReferenceCache:
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None:
        _DEFAULT_CACHE = ReferenceCache()
    return _DEFAULT_CACHE


@torch.no_grad()
def measure_references(case, refs: list[Reference], x: torch.Tensor, example: Example) -> dict:
    """``{reference name: {step: {pair: Delta}}}`` on the example's input; a reference with several
    draws keeps, per pair, the largest Delta of its draws. The plain conv is ``"plain conv"``."""
    out: dict = {}
    for r_index, ref in enumerate(refs):
        per_step = {}
        for step in example.steps:
            draws = []
            for j in range(ref.draws):
                layer = ref.build(20_000 + 97 * example.seed + 7 * r_index + j).double().eval()
                draws.append(measure_pairs(layer, x, case.kind, case.scales, step))
            per_step[step] = _worst(draws)
        out[ref.name] = per_step
    if case.kind != "T->T":
        out["plain conv"] = {
            step: dict(
                plain_conv_baseline(
                    PlainShape(case), x, step, generator=torch.Generator().manual_seed(20_000 + example.seed)
                ).per_pair
            )
            for step in example.steps
        }
    return out


# --- the verdict ------------------------------------------------------------------------------


@dataclasses.dataclass
class PairVerdict:
    step: int
    pair: tuple[int, int]
    delta: float
    anchor: float  # what the bound is F x (nan at levels without a per-pair anchor)
    anchor_name: str
    best: float  # the smallest reference Delta at this pair
    best_name: str
    plain: float  # the plain conv (T->H, H->H) or the catalogue's CNN (T->T)
    judged: bool
    passed: bool

    @property
    def ratio_anchor(self) -> float:
        return self.delta / self.anchor if self.anchor > 0 else math.inf

    @property
    def ratio_best(self) -> float:
        return self.delta / self.best if self.best > 0 else math.inf

    @property
    def ratio_plain(self) -> float:
        return self.delta / self.plain if self.plain > 0 else math.inf


@dataclasses.dataclass
class Verdict:
    """The verdict on one example. ``passed``; ``pairs`` (per step and pair);
    ``rank`` ({step: (rank, of how many)}) for T->T; ``message()`` says it all."""

    case_name: str
    kind: str
    level: Level
    example: Example
    pairs: list[PairVerdict]
    references: list[str]
    rank: dict = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        ok = all(p.passed for p in self.pairs)
        if self.level.name == "rank":
            ok = ok and all(r <= self.level.rank for r, _ in self.rank.values())
        return ok

    @property
    def failures(self) -> list[PairVerdict]:
        return [p for p in self.pairs if not p.passed]

    def worst_ratio(self) -> float:
        judged = [p.ratio_anchor for p in self.pairs if p.judged and math.isfinite(p.anchor)]
        return max(judged) if judged else math.nan

    def message(self) -> str:
        head = (
            f"{self.case_name} ({self.kind}, level {self.level}: {self.level.describe(self.kind)}), "
            f"example seed {self.example.seed}, steps {list(self.example.steps)}: "
            + ("passes" if self.passed else "FAILS")
        )
        lines = [head]
        for p in self.failures:
            if p.judged and math.isfinite(p.anchor) and p.delta > self.level.factor * p.anchor:
                lines.append(
                    f"  FAILS at step {p.step}, scale pair {p.pair}: Delta {p.delta:.3e} = {p.ratio_anchor:.3g} x "
                    f"{p.anchor_name} ({p.anchor:.3e}; allowed {self.level.factor:g} x), {p.ratio_best:.3g} x the best "
                    f"reference ({p.best_name}), {p.ratio_plain:.3g} x the plain conv"
                )
            else:
                lines.append(
                    f"  FAILS at step {p.step}, scale pair {p.pair}: Delta {p.delta:.3e} is not below the plain "
                    f"conv's {p.plain:.3e} ({p.ratio_plain:.3g} x)"
                )
        if self.level.name == "rank":
            for step, (r, n) in self.rank.items():
                if r > self.level.rank:
                    lines.append(f"  FAILS at step {step}: rank {r} of {n} (claimed: among the {self.level.rank} best)")
        lines.append("  step  pair     Delta      / anchor  / best ref  / plain   judged")
        for p in self.pairs:
            lines.append(
                f"  {p.step:>4}  {p.pair[0]}-{p.pair[1]:<5}  {p.delta:.3e}  {_r(p.ratio_anchor):>8}  "
                f"{_r(p.ratio_best):>9}  {_r(p.ratio_plain):>7}   {'yes' if p.judged else 'no'}"
            )
        if self.rank:
            lines.append(
                "  rank among the layer catalogue (Delta mean over pairs): "
                + ", ".join(f"step {t}: {r} of {n}" for t, (r, n) in self.rank.items())
            )
        lines.append("  references (same input and steps): " + "; ".join(self.references))
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _r(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if math.isinf(x) else f"{x:.3g}")


@torch.no_grad()
def measure_user(case, x: torch.Tensor, example: Example) -> dict:
    """``{step: {pair: Delta}}`` of the user's layer: per pair the mean over ``USER_DRAWS`` weight
    draws (the first from the example's seed), an estimate of the layer's expected Delta to set
    against the references' largest of their draws."""
    per_draw = []
    for j in range(USER_DRAWS):
        torch.manual_seed(example.seed + 1_000_003 * j)
        layer = case.build().double().eval()
        per_draw.append({t: measure_pairs(layer, x, case.kind, case.scales, t) for t in example.steps})
    return {t: {p: sum(d[t][p] for d in per_draw) / len(per_draw) for p in per_draw[0][t]} for t in example.steps}


def _reference_labels(case, refs) -> list[str]:
    out = []
    for r in refs:
        if r.role == "basis":
            extra = f", scale_size {case.scale_size}" if case.kind == "H->H" else ""
            out.append(
                f"{r.name} ({'SESConv_Z2_H' if case.kind == 'T->H' else 'SESConv_H_H'}, kernel {case.kernel_size}, "
                f"effective size {case.effective_size}, scales {list(case.scales)}{extra}; worst of {r.draws} draws)"
            )
        else:
            out.append(f"{r.name} (layer catalogue; worst of {r.draws} draws)")
    if case.kind != "T->T":
        out.append(f"plain conv ({case.kernel_size}x{case.kernel_size}, same input)")
    return out


def verdict(case, seed: int, step: int | None = None, level=None, cache: ReferenceCache | None = None) -> Verdict:
    """The verdict on one example of ``case``: the user's layer with weights from ``seed``, the
    input of ``seed``, at ``step`` (default: drawn from the seed) and step 1.

    Args:
        level: overrides the case's declared level (a :class:`Level` or its spelling).
        cache: where reference measurements are kept (default: :func:`default_cache`).
    """
    level = parse_level(level if level is not None else case.level)
    s = len(case.scales)
    if step is None:
        step = 1 + seed % (s - 1)
    if not 1 <= step < s:
        raise VerdictError(f"case {case.name!r}: scale step must be in [1, {s - 1}], got {step}")
    example = Example(seed, step)
    x = example_input(case, seed)
    if level.name == "regression":  # the old rule: one layer, its overall Delta
        torch.manual_seed(seed)
        layer = case.build().double().eval()
        user = {t: measure_pairs(layer, x, case.kind, case.scales, t) for t in example.steps}
        return _regression_verdict(case, level, example, x, user)
    user = measure_user(case, x, example)
    refs = references(case, level)
    cache = default_cache() if cache is None else cache
    measured = cache.get(case, level, refs, seed, example.steps)
    if measured is None:
        measured = measure_references(case, refs, x, example)
        cache.put(case, level, refs, seed, example.steps, measured)
    labels = _reference_labels(case, refs)
    pairs: list[PairVerdict] = []
    rank: dict = {}
    notes: list[str] = []
    for t in example.steps:
        ref_at = {r.name: measured[r.name][t] for r in refs}
        for pair, d in user[t].items():
            values = {name: per[pair] for name, per in ref_at.items()}
            best_name = min(values, key=values.get)
            if case.kind == "T->T":
                plain = values.get("CNN", math.nan)
                if level.name == "method":
                    anchor, anchor_name = values[level.method], f"the catalogue's {level.method}"
                    judged = True
                    passed = d <= level.factor * anchor
                else:
                    anchor, anchor_name, judged, passed = math.nan, "", False, True
            else:
                plain = measured["plain conv"][t][pair]
                if level.anchor in ("worst", "best"):
                    pick = max if level.anchor == "worst" else min
                    anchor_name = pick(values, key=values.get)
                    anchor = values[anchor_name]
                    anchor_name = f"the {level.anchor} reference ({anchor_name})"
                else:
                    anchor_name = f"SESN basis {level.anchor}"
                    anchor = values[anchor_name]
                judged = anchor < JUDGED_BELOW_PLAIN * plain
                passed = d < plain and (not judged or d <= level.factor * anchor)
            pairs.append(PairVerdict(t, pair, d, anchor, anchor_name, values[best_name], best_name, plain, judged,
                                     passed))  # fmt: skip
        if case.kind == "T->T":
            mean = {name: sum(per.values()) / len(per) for name, per in ref_at.items()}
            mine = sum(user[t].values()) / len(user[t])
            rank[t] = (1 + sum(v < mine for v in mean.values()), len(mean) + 1)
    unjudged = [p for p in pairs if not p.judged]
    if unjudged and case.kind != "T->T":
        notes.append(
            f"{len(unjudged)} pair(s) not judged against the references: the anchor is not below "
            f"{JUDGED_BELOW_PLAIN:g} x the plain conv there (the layer must still beat the plain conv)"
        )
    return Verdict(case.name, case.kind, level, example, pairs, labels, rank, notes)


def _regression_verdict(case, level, example, x, user) -> Verdict:

    table = read_tolerances()
    missing = [t for t in example.steps if (case.name, t) not in table]
    if missing:
        raise VerdictError(
            f"case {case.name!r} claims level regression but {tolerances_path()} has no measured tolerance for steps "
            f"{missing}; measure them with `python -m sesn.testing.plugins measure --import <your module> --out FILE` "
            "and set SESN_PLUGIN_TOLERANCES=FILE"
        )
    pairs = []
    torch.manual_seed(example.seed)
    layer = case.build().double().eval()
    for t in example.steps:
        tol = float(table[(case.name, t)]["tolerance"])
        if case.kind == "T->T":
            plain_pairs = {p: math.inf for p in user[t]}
            overall = sum(user[t].values()) / len(user[t])
        else:
            plain_pairs = plain_conv_baseline(
                PlainShape(case), x, t, generator=torch.Generator().manual_seed(20_000 + example.seed)
            ).per_pair
            overall = scale_equivariance(layer, x, t, list(case.scales)).delta  # the overall Delta it was measured as
        for pair, d in user[t].items():
            plain = plain_pairs[pair]
            passed = overall <= tol and d < plain
            pairs.append(PairVerdict(t, pair, d, tol, "its own measured tolerance", math.nan, "", plain, True, passed))
    return Verdict(
        case.name,
        case.kind,
        level,
        example,
        pairs,
        [f"the tolerance file {tolerances_path()} (measured on this layer)"],
        notes=["regression level: the tolerance was measured on the layer under test; it detects a change only"],
    )
