"""Mutation testing of the equivariance suite: realistic bugs, injected without editing the source.

A *mutant* is a deliberately broken variant of the library, made by monkeypatching one
function or method at run time (nothing under ``sesn/`` is edited). The suite is only
trusted if every mutant makes it fail.

Activate one mutant for a whole pytest run with the environment variable ``SESN_MUTANT``
(read by ``equivariance_tests/conftest.py``)::

    SESN_MUTANT=no_steering pytest equivariance_tests -x

Run the suite once per mutant and fail unless every mutant is killed (what CI runs)::

    python -m equivariance_tests.mutants run            # -x, fast rescaling cases first
    python -m equivariance_tests.mutants run --matrix   # full kill matrix (mutant x test file)
    python -m equivariance_tests.mutants list

Steering mutants replace the basis a steerable layer builds (``sesn.nn.steerable.basis_tensor``):
the T->H and H->H layers then use the broken per-scale functions. Layer mutants patch one
method of a layer. Measurement mutants break the measuring code itself (``sesn.equivariance``),
so a test that trusted a wrong measurement would be caught too.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

import sesn.basis.hermite
import sesn.equivariance
import sesn.models.mnist
import sesn.nn.conv_h_h
import sesn.nn.conv_z2_h
import sesn.nn.separable
import sesn.nn.steerable
import sesn.transforms
from sesn.basis import BasisSpec
from sesn.basis import basis_tensor as true_basis_tensor
from sesn.nn import (
    ScaleBatchNorm,
    ScaleMaxPool2d,
    SESConv_H_H,
    SESConv_H_H_1x1,
    SESMaxProjection,
    SESMeanProjection,
)
from sesn.nn.fft_conv import transform_plan as true_transform_plan

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV = "SESN_MUTANT"
WRONG_SIGMA_FACTOR = 1.1  # the wrong_sigma mutant builds the largest scale at 1.1 x sigma
ODD_SIGMA_FACTOR = 0.9  # sigma_odd_scales builds every odd scale at 0.9 x sigma


# --- steering mutants: a broken basis [N_b, S, k, k] ------------------------------------


def no_steering(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """The smallest scale's functions at every scale (the basis is never rescaled)."""
    return basis[:, :1].expand_as(basis).clone()


def unscaled_crop(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """Each scale gets the *largest* scale's functions cropped to its window (windowed, not rescaled)."""
    out = torch.zeros_like(basis)
    k = spec.kernel_size
    for i, m in enumerate(spec.windows):
        a = (k - m) // 2
        out[:, i, a : a + m, a : a + m] = basis[:, -1, a : a + m, a : a + m]
    return out


def scale_index_off_by_one(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """Scale i uses the functions of scale i+1 (the largest keeps its own)."""
    s = basis.shape[1]
    return basis[:, [min(i + 1, s - 1) for i in range(s)]].clone()


def reversed_scale_order(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """Scales in reverse order: the smallest index gets the largest functions."""
    return basis.flip(1).clone()


def per_scale_renormalisation(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """Every function normalised by its L2 norm at *its own* scale, not at scale 0, which
    drops the sigma^-2 relation between the scales."""
    norm = basis.pow(2).sum(dim=(-2, -1), keepdim=True).sqrt()
    return basis / norm.clamp_min(torch.finfo(basis.dtype).tiny)


def wrong_sigma(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """The largest scale is built at WRONG_SIGMA_FACTOR x its sigma (a wrong entry in the scale list)."""
    scales = list(spec.scales)
    scales[-1] *= WRONG_SIGMA_FACTOR
    wrong = true_basis_tensor(dataclasses.replace(spec, scales=tuple(scales)), dtype=basis.dtype)
    out = basis.clone()
    out[:, -1] = wrong[:, -1].to(basis.device)
    return out


def sigma_one_percent(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """The second scale is built at 1.01 x its sigma: an error far below the rescaling
    tolerances, which only the exact basis tests (test_exact_basis.py) can see."""
    scales = list(spec.scales)
    scales[1] *= 1.01
    wrong = true_basis_tensor(dataclasses.replace(spec, scales=tuple(scales)), dtype=basis.dtype)
    out = basis.clone()
    out[:, 1] = wrong[:, 1].to(basis.device)
    return out


def sigma_odd_scales(basis: torch.Tensor, spec: BasisSpec) -> torch.Tensor:
    """Every odd scale index is built at ODD_SIGMA_FACTOR x its sigma (a consistent bug at every
    other scale, invisible to a check at even steps only)."""
    scales = list(spec.scales)
    for i in range(1, len(scales), 2):
        scales[i] *= ODD_SIGMA_FACTOR
    wrong = true_basis_tensor(dataclasses.replace(spec, scales=tuple(scales)), dtype=basis.dtype)
    out = basis.clone()
    out[:, 1::2] = wrong[:, 1::2].to(basis.device)
    return out


BASIS_MUTATIONS: dict[str, Callable[[torch.Tensor, BasisSpec], torch.Tensor]] = {
    f.__name__: f
    for f in (
        no_steering,
        unscaled_crop,
        scale_index_off_by_one,
        reversed_scale_order,
        per_scale_renormalisation,
        wrong_sigma,
        sigma_odd_scales,
        sigma_one_percent,
    )
}


def mutated_basis_tensor(mutation):
    """A drop-in for ``basis_tensor`` that returns the mutated basis."""

    def basis_tensor(spec: BasisSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return mutation(true_basis_tensor(spec, dtype=torch.float64), spec).to(dtype)

    return basis_tensor


# --- mutants of the step every path reads: the 1-D Hermite-Gaussian functions -----------------
# (the dense basis of naive/direct/fft and the separable path's 1-D tables are both built
# from sesn.basis.hermite.hermite_gaussian_1d)

_true_hermite_1d = sesn.basis.hermite.hermite_gaussian_1d


def _hermite_1d_unnormalised(x, order, scale):
    # the 1 / sigma factor dropped: the 2-D functions lose their sigma^-2 between scales
    return _true_hermite_1d(x, order, scale) * scale


def _hermite_1d_sigma_one_percent(x, order, scale):
    # every 1-D function evaluated at 1.01 sigma: a consistent, equivariant, wrong basis
    return _true_hermite_1d(x, order, 1.01 * scale)


# --- path-specific mutants ------------------------------------------------------------------


def _fft_plan_shifted(h, w, padding, kernel_size):
    # the cropped inverse DFT starts one sample late: the FFT path's output moves by a pixel
    a, pad, lh, lw = true_transform_plan(h, w, padding, kernel_size)
    return a, pad + 1, lh, lw


_true_window_slice = sesn.nn.steerable.SteerableConvBase.window_slice


def _window_slice_offset(self, scale_index):
    # direct path: a window smaller than the kernel is cut one pixel off centre
    sl = _true_window_slice(self, scale_index)
    return slice(sl.start + 1, sl.stop + 1) if sl.stop < self.kernel_size else sl


_true_tables_init = sesn.nn.separable.SeparableTables.__init__


def _tables_transposed(self, spec, dtype, device):
    # separable path: the pair table swaps the height and width orders (each function transposed)
    _true_tables_init(self, spec, dtype, device)
    _, pairs, _ = sesn.basis.hermite.separable_factors(spec)
    p = self.orders
    slots = (pairs[:, 0] * p + pairs[:, 2]) * p + pairs[:, 1]
    self.in_order = bool(np.array_equal(slots, np.arange(self.planes)))
    self.slots = torch.as_tensor(slots, device=device)


def _cache_key_without_version(self):
    # the eval-mode kernel cache forgets the weight's version: an in-place update goes unseen
    w = self.weight
    return (w.data_ptr(), w.dtype, w.device, self.basis.data_ptr())


def _batchnorm_per_scale(self, x):
    # training-mode statistics per (channel, scale) instead of per channel
    if not self.training:
        return torch.nn.BatchNorm3d.forward(self, x)
    mean = x.mean(dim=(0, 3, 4), keepdim=True)
    var = x.var(dim=(0, 3, 4), unbiased=False, keepdim=True)
    with torch.no_grad():
        n = x.numel() / (x.shape[1] * x.shape[2])
        m = self.momentum
        self.running_mean.mul_(1 - m).add_(m * mean.mean(dim=2).flatten())
        self.running_var.mul_(1 - m).add_(m * var.mean(dim=2).flatten() * n / (n - 1))
        self.num_batches_tracked += 1
    y = (x - mean) / torch.sqrt(var + self.eps)
    return y * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)


def _conv_1x1_scale_channel_mixup(self, x):
    # [B, C, S, H, W] folded to [B*S, C, H, W] by a reshape without moving S next to B
    b, c, s, h, w = x.shape
    y = F.conv2d(x.reshape(b * s, c, h, w), self.weight, self.bias, stride=self.stride)
    return y.reshape(b, self.out_channels, s, y.shape[-2], y.shape[-1])


def _maxpool_across_scales(self, x):
    # the pooling window also spans two neighbouring scales (a 3-D window (2, k, k))
    x = F.pad(x, (0, 0, 0, 0, 0, 1), value=float("-inf"))
    k, st, p = self.kernel_size, self.stride, self.padding
    return F.max_pool3d(x, (2, k, k), (1, st, st), (0, p, p))


# --- layer and measurement mutants ----------------------------------------------------------

_true_rescale = sesn.transforms.rescale


def _tap_offset_padded(self, x):
    # taps read one scale too far: output i sees inputs i+1 .. i+K (zero past the largest)
    return F.pad(x, (0, 0, 0, 0, 0, self.scale_size))[:, :, 1:]


_true_layer_kwargs = sesn.models.mnist.layer_kwargs


def _layer_kwargs_without_mult(config, basis_type=None, **overrides):
    # model wiring: the MNIST builders drop basis B's sub-scale ratio (every layer gets 1.2)
    kw = _true_layer_kwargs(config, basis_type, **overrides)
    kw.pop("mult", None)
    return kw


def _max_over_channels(self, x):
    return x.max(dim=1).values


def _mean_over_channels(self, x):
    return x.mean(dim=1)


def _inverted_rescale(x, factor):
    return _true_rescale(x, 1.0 / factor)


def _shift_wrong_direction(x, scales, t, rescale_fn=None):
    # slice i gets slice i - t (instead of i + t), still shrunk by sigma_i / sigma_{i+t}
    rescale_fn = _true_rescale if rescale_fn is None else rescale_fn
    out = torch.zeros_like(x)
    for i in range(x.shape[2] - t):
        if i - t >= 0:
            out[:, :, i] = rescale_fn(x[:, :, i - t], scales[i] / scales[i + t])
    return out


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    group: str  # "steering", "shared", "path", "layer", "model" or "measurement"
    description: str
    patches: tuple  # (target object, attribute, replacement)
    # the drawn cases of the per-example kill rate (equivariance_tests.cases): "layer" (a
    # steerable layer of one of ``kinds``), "scalewise" (batch norm, pooling, 1x1, projections)
    # or "model" (a registered SESN model's wiring)
    cases: str = "layer"
    kinds: tuple = ("th", "hh", "hh_interscale")

    def apply(self, monkeypatch) -> None:
        for target, attr, value in self.patches:
            monkeypatch.setattr(target, attr, value)


def _steering(name: str) -> Mutant:
    fn = BASIS_MUTATIONS[name]
    return Mutant(
        name, "steering", fn.__doc__.split("\n")[0], ((sesn.nn.steerable, "basis_tensor", mutated_basis_tensor(fn)),)
    )


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in [
        *(_steering(n) for n in BASIS_MUTATIONS),
        Mutant(
            "hermite_1d_unnormalised",
            "shared",
            "the 1-D Hermite-Gaussian functions lose their 1/sigma factor (every path)",
            ((sesn.basis.hermite, "hermite_gaussian_1d", _hermite_1d_unnormalised),),
        ),
        Mutant(
            "hermite_1d_sigma_one_percent",
            "shared",
            "the 1-D Hermite-Gaussian functions are evaluated at 1.01 sigma (every path)",
            ((sesn.basis.hermite, "hermite_gaussian_1d", _hermite_1d_sigma_one_percent),),
        ),
        Mutant(
            "fft_output_shift",
            "path",
            "FFT path: the cropped inverse DFT is read one sample late",
            (
                (sesn.nn.conv_z2_h, "transform_plan", _fft_plan_shifted),
                (sesn.nn.conv_h_h, "transform_plan", _fft_plan_shifted),
            ),
        ),
        Mutant(
            "direct_window_offset",
            "path",
            "direct path: windows smaller than the kernel cut one pixel off centre",
            ((sesn.nn.steerable.SteerableConvBase, "window_slice", _window_slice_offset),),
        ),
        Mutant(
            "separable_pairs_transposed",
            "path",
            "separable path: height and width orders swapped in the pair table",
            ((sesn.nn.separable.SeparableTables, "__init__", _tables_transposed),),
        ),
        Mutant(
            "stale_kernel_cache",
            "path",
            "eval-mode kernel cache not invalidated by an in-place weight update",
            ((sesn.nn.steerable.SteerableConvBase, "_cache_key", _cache_key_without_version),),
        ),
        Mutant(
            "batchnorm_per_scale_statistics",
            "layer",
            "ScaleBatchNorm (train) normalises each scale with its own statistics",
            ((ScaleBatchNorm, "forward", _batchnorm_per_scale),),
            cases="scalewise",
        ),
        Mutant(
            "conv_1x1_scale_channel_mixup",
            "layer",
            "1x1 H->H folds scales into the batch with a reshape that mixes scales and channels",
            ((SESConv_H_H_1x1, "forward", _conv_1x1_scale_channel_mixup),),
            cases="scalewise",
        ),
        Mutant(
            "maxpool_across_scales",
            "layer",
            "scale-wise max-pool uses a 3-D window spanning two scales",
            ((ScaleMaxPool2d, "forward", _maxpool_across_scales),),
            cases="scalewise",
        ),
        Mutant(
            "hh_tap_offset",
            "layer",
            "H->H taps read at the wrong scale offset (output i sees inputs i+1..i+K)",
            ((SESConv_H_H, "_padded", _tap_offset_padded),),
            kinds=("hh", "hh_interscale"),
        ),
        Mutant(
            "projection_wrong_axis",
            "layer",
            "max/mean projections reduce over channels instead of scales",
            ((SESMaxProjection, "forward", _max_over_channels), (SESMeanProjection, "forward", _mean_over_channels)),
            cases="scalewise",
        ),
        Mutant(
            "model_wiring_mult_dropped",
            "model",
            "the MNIST model builders drop basis B's mult: every layer gets the default sub-scale ratio",
            ((sesn.models.mnist, "layer_kwargs", _layer_kwargs_without_mult),),
            cases="model",
        ),
        Mutant(
            "measure_factor_inverted",
            "measurement",
            "the measurement rescales by sigma_{i+t}/sigma_i instead of sigma_i/sigma_{i+t}",
            ((sesn.transforms, "rescale", _inverted_rescale), (sesn.equivariance, "rescale", _inverted_rescale)),
        ),
        Mutant(
            "measure_shift_wrong_direction",
            "measurement",
            "the joint action shifts the scale axis the wrong way (slice i <- slice i - t)",
            (
                (sesn.transforms, "rescale_and_scale_shift", _shift_wrong_direction),
                (sesn.equivariance, "rescale_and_scale_shift", _shift_wrong_direction),
            ),
        ),
    ]
}


def get_mutant(name: str) -> Mutant:
    if name not in MUTANTS:
        raise ValueError(f"unknown mutant {name!r}; known: {', '.join(MUTANTS)}")
    return MUTANTS[name]


# --- the runner --------------------------------------------------------------------------

# Fast rescaling cases first, so `-x` stops early for most mutants.
TEST_ORDER = [
    "test_exact_basis.py",
    "test_rescale.py",
    "test_structure.py",
    "test_scale_axis.py",
    "test_tester.py",
    "test_translation.py",
    "test_optimized_basis.py",
    "test_model_properties.py",
]


def test_files() -> list[str]:
    files = [f"equivariance_tests/{n}" for n in TEST_ORDER if (HERE / n).exists()]
    rest = sorted(f"equivariance_tests/{p.name}" for p in HERE.glob("test_*.py") if p.name not in TEST_ORDER)
    return files + [f for f in rest if not f.endswith("test_kind_selection.py")]


def run_one(
    name: str | None, stop_first: bool, junit: Path, timeout: float = 1800, marks: str = "not pinned"
) -> tuple[int, float, str]:
    """pytest over the equivariance tests with mutant ``name`` active (None: no mutant), the
    tests selected by ``-m marks`` (default: the properties, without the pinned numbers);
    returns (exit code, seconds, tail of the output)."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *test_files(),
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        f"--junitxml={junit}",
        "-m",
        marks,
    ]
    cmd += ["-x"] if stop_first else []
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["SESN_HYPOTHESIS_PROFILE"] = "mutant"
    if name is not None:
        env[ENV] = name
    t0 = time.perf_counter()
    try:
        res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, time.perf_counter() - t0, f"timed out after {timeout:.0f} s"
    return res.returncode, time.perf_counter() - t0, (res.stdout + res.stderr)[-1500:]


def assertion_failures(junit: Path) -> int:
    """Tests that failed on an AssertionError (a crash or an XPASS is not evidence of a kill)."""
    if not junit.exists():
        return 0
    count = 0
    for case in ET.parse(junit).getroot().iter("testcase"):
        for child in case:
            if child.tag == "failure" and "AssertionError" in f"{child.get('message', '')}\n{child.text or ''}":
                count += 1
                break
    return count


def _per_file(junit: Path) -> dict[str, tuple[int, int]]:
    """{test file: (tests failed on an assertion, tests run)} from a junit XML report
    (skipped and xfailed tests are not counted; crashes and XPASS are not failures here)."""
    out: dict[str, list[int]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        f = case.get("classname", "").split(".")[-1] + ".py"
        failed = any(c.tag == "failure" and "AssertionError" in f"{c.get('message', '')}\n{c.text or ''}" for c in case)
        skipped = any(c.tag == "skipped" for c in case)
        if skipped:
            continue
        cell = out.setdefault(f, [0, 0])
        cell[0] += failed
        cell[1] += 1
    return {k: (v[0], v[1]) for k, v in out.items()}


# --- per-example kill rate ------------------------------------------------------------------

PER_EXAMPLE_MIN = 0.9  # every mutant must fail on at least this share of the drawn cases
LAYER_CHECK_ORDER = ("exact_basis", "structure", "rescale", "kernel_cache", "paths_agree")  # cheap first


def per_example_worker(
    name: str | None,
    n: int,
    seed: int,
    family: str,
    kinds: tuple,
    checks: tuple = (),
    adjacent: bool = True,
    paths: tuple | None = None,
) -> dict:
    """Draw ``n`` cases of ``family`` (seeded) and run every check of the family on each (or only
    ``checks``), with mutant ``name`` active (None: the control). A case is killed when a check
    fails on an assertion (the first such check is recorded); another exception is a crash, not a
    kill. ``adjacent=False``: the rescaling check measures the drawn step alone (the behaviour
    before every case also checked step 1; for the before/after comparison). ``paths``: draw
    layer cases on these compute paths only (the steering mutants replace the dense basis, which
    the separable path does not read)."""
    import pytest

    from equivariance_tests import cases as C

    patch = pytest.MonkeyPatch()
    if name is not None:
        get_mutant(name).apply(patch)
    killed, crashed, by_check, failures = 0, 0, {}, []
    try:
        for i in range(n):
            draws = C.RandomDraws(seed * 1_000_003 + i)
            if family == "layer":
                case = C.draw_layer_case(draws, kinds=kinds, sources=("grid", "paper"), paths=paths)
                run = [(c, C.LAYER_CHECKS[c]) for c in LAYER_CHECK_ORDER]
                if not adjacent:
                    run = [(c, (lambda x: C.check_rescale(x, adjacent=False)) if c == "rescale" else f) for c, f in run]
            elif family == "model":
                case = C.draw_model_case(draws)
                run = list(C.MODEL_CHECKS.items())
            else:
                case = C.draw_scalewise_case(draws)
                run = list(C.SCALEWISE_CHECKS.items())
            if checks:
                run = [(c, f) for c, f in run if c in checks]
            for check_name, check in run:
                try:
                    check(case)
                except AssertionError as e:
                    killed += 1
                    by_check[check_name] = by_check.get(check_name, 0) + 1
                    failures.append(f"{case}: {check_name}: {str(e).splitlines()[0][:300]}")
                    break
                except Exception as e:  # noqa: BLE001 - a crash is recorded, not counted as a kill
                    crashed += 1
                    failures.append(f"{case}: {check_name} crashed: {type(e).__name__}: {e}"[:300])
                    break
    finally:
        patch.undo()
    return {"mutant": name, "family": family, "kinds": list(kinds), "cases": n, "killed": killed,
            "crashed": crashed, "by_check": by_check, "failures": failures[:5]}  # fmt: skip


def _run_worker(name, n, seed, family, kinds, checks=(), adjacent=True, paths=None) -> dict:
    import json

    cmd = [
        sys.executable,
        "-m",
        "equivariance_tests.mutants",
        "_worker",
        name or "-",
        str(n),
        str(seed),
        family,
        ",".join(checks) or "-",
        "adjacent" if adjacent else "drawn-step-only",
        ",".join(paths) if paths else "-",
        *kinds,
    ]
    env = {k: v for k, v in os.environ.items() if k != ENV}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"per-example worker for {name} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def per_example(
    names, n: int, seed: int, out: Path, checks=(), adjacent: bool = True, stem: str = "per_example", paths=None
) -> int:
    """The per-example kill rate of every mutant over ``n`` drawn cases (same cases for the
    control, which must pass all of them); writes ``<stem>.{md,csv}`` under ``out``. ``checks``:
    only these layer checks (e.g. ``("rescale",)``: the rescaling check alone, exact anchors
    off); ``adjacent=False``: the rescaling check at the drawn step alone."""
    import pandas as pd
    from tqdm import tqdm

    from sesn.report.artefacts import dataframe_to_markdown, write_table

    t0 = time.perf_counter()
    controls = {}
    records, bad = [], []
    for m in tqdm([MUTANTS[x] for x in names], desc="per-example kill rate", unit="mutant"):
        key = (m.cases, tuple(m.kinds) if m.cases == "layer" else ())
        if checks and m.cases != "layer":
            continue  # the chosen checks are layer checks
        if key not in controls:
            controls[key] = _run_worker(None, n, seed, *key, checks, adjacent, paths)
            c = controls[key]
            if c["killed"] or c["crashed"]:
                print(
                    f"control ({key}) fails {c['killed']} and crashes on {c['crashed']} of {n} cases:", file=sys.stderr
                )
                print("\n".join(c["failures"]), file=sys.stderr)
                return 1
        r = _run_worker(m.name, n, seed, *key, checks, adjacent, paths)
        rate = r["killed"] / n
        first = sorted(r["by_check"].items(), key=lambda kv: -kv[1])
        records.append({
            "mutant": m.name, "group": m.group, "cases": f"{m.cases} ({', '.join(key[1])})" if key[1] else m.cases,
            "drawn": n, "killed": r["killed"], "crashed": r["crashed"], "kill rate": f"{rate:.2f}",
            "first failing check": ", ".join(f"{k} {v}" for k, v in first),
        })  # fmt: skip
        if rate < PER_EXAMPLE_MIN and not checks:
            bad.append(m.name)
            print(f"{m.name}: kill rate {rate:.2f} < {PER_EXAMPLE_MIN}", file=sys.stderr)
    df = pd.DataFrame(records)
    intro = [
        "# Per-example kill rate: the share of drawn cases on which each mutant fails a check",
        "",
        f"{n} cases per mutant, drawn with seed {seed} (`equivariance_tests/cases.py`; the same cases "
        "for every mutant of a family, and for the control without a mutant, which passes all of "
        "them). A *layer* case is a T->H or H->H layer of a configuration of the tolerance table "
        "(grid and paper, bases A and B), with its input, dtype and compute path drawn; its checks: "
        "exact basis, H->H structure, rescaling under the measured tolerance, kernel cache, paths "
        "agree. A *scalewise* case is a random H map and scale step, checked on batch norm, pooling, "
        "1x1 and projections (definition + scale shift). A *model* case is a registered MNIST-scale SESN "
        "model, its layers checked against the analytic basis of its configuration. A crash is not a kill. "
        f"Required: every mutant >= {PER_EXAMPLE_MIN}.",
        "",
        f"Regenerate: `python -m equivariance_tests.mutants --per-example {n} --seed {seed}"
        f"{_flags(checks, adjacent, paths)}` "
        f"({time.perf_counter() - t0:.0f} s here).",
        "",
    ]
    if checks or not adjacent or paths:
        intro[0] = (
            f"# Per-example kill rate of the check(s) {', '.join(checks) or 'all'} alone"
            + ("" if adjacent else ", at the drawn scale step only (the suite before it also checked step 1)")
            + (f", layer cases on the paths {', '.join(paths)}" if paths else "")
        )
        intro[2] = intro[2].split("Required:")[0] + "A diagnostic: no rate is required of one check alone."
    write_table(df, out, stem, intro)
    print(dataframe_to_markdown(df))
    print(f"wrote {out / (stem + '.md')}")
    if bad:
        print(f"mutants below a kill rate of {PER_EXAMPLE_MIN}: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _flags(checks, adjacent, paths=None) -> str:
    return (
        (f" --checks {','.join(checks)}" if checks else "")
        + ("" if adjacent else " --drawn-step-only")
        + (f" --paths {','.join(paths)}" if paths else "")
    )


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "_worker":  # one per-example run in a fresh process (internal)
        import json

        name, n, seed, family, checks, adjacency, paths, *kinds = argv[1:]
        checks = () if checks == "-" else tuple(checks.split(","))
        result = per_example_worker(
            None if name == "-" else name,
            int(n),
            int(seed),
            family,
            tuple(kinds),
            checks,
            adjacency == "adjacent",
            None if paths == "-" else tuple(paths.split(",")),
        )
        print(json.dumps(result))
        return 0
    if argv and argv[0].startswith("--per-example"):  # the documented spelling
        argv = ["per-example", *argv[0].split("=")[1:], *argv[1:]]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue")
    pe = sub.add_parser(
        "per-example",
        help="kill rate per drawn case (also spelled --per-example N); exit 1 if a mutant is below 0.9",
    )
    pe.add_argument("n", type=int, help="cases drawn per mutant")
    pe.add_argument("names", nargs="*", help="mutants (default: all)")
    pe.add_argument("--seed", type=int, default=0, help="seed of the case draws")
    pe.add_argument("--out", type=Path, default=REPO / "results" / "mutants", help="folder for per_example.{md,csv}")
    pe.add_argument(
        "--checks",
        default="",
        help=f"comma-separated layer checks to run alone (of {', '.join(LAYER_CHECK_ORDER)}; default: all); "
        "writes per_example_<checks>[_drawn_step].{md,csv}",
    )
    pe.add_argument("--paths", default="", help="comma-separated compute paths the layer cases are drawn on")
    pe.add_argument(
        "--drawn-step-only",
        action="store_true",
        help="the rescaling check at the drawn step alone, as before every case also checked step 1",
    )
    run = sub.add_parser("run", help="run the equivariance tests once per mutant; exit 1 unless every mutant is killed")
    run.add_argument("names", nargs="*", help="mutants to run (default: all)")
    run.add_argument("--matrix", action="store_true", help="run every test (no -x) and write the kill matrix")
    run.add_argument(
        "--out", type=Path, default=REPO / "results" / "mutants", help="folder for the kill matrix (with --matrix)"
    )
    args = p.parse_args(argv)
    if args.command == "list":
        for m in MUTANTS.values():
            print(f"{m.name:32s} {m.group:12s} {m.description}")
        return 0
    if args.command == "per-example":
        for n in args.names:
            get_mutant(n)
        checks = tuple(c for c in args.checks.split(",") if c)
        for c in checks:
            if c not in LAYER_CHECK_ORDER:
                p.error(f"unknown check {c!r}; one of {', '.join(LAYER_CHECK_ORDER)}")
        paths = tuple(x for x in args.paths.split(",") if x) or None
        stem = (
            "per_example" + (f"_{'_'.join(checks)}" if checks else "") + ("_drawn_step" if args.drawn_step_only else "")
        )
        stem += f"_{'_'.join(paths)}" if paths else ""
        return per_example(
            args.names or list(MUTANTS), args.n, args.seed, args.out, checks, not args.drawn_step_only, stem, paths
        )
    names = args.names or list(MUTANTS)
    for n in names:
        get_mutant(n)
    survivors, rows = [], []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # control: without a mutant the same run must pass, or a "kill" proves nothing
        code, seconds, tail = run_one(None, stop_first=True, junit=Path(tmp) / "control.xml")
        print(f"{'(no mutant: control)':32s} {'passes' if code == 0 else 'FAILS':10s} {seconds:6.1f} s", flush=True)
        if code != 0:
            print(tail)
            print("the equivariance tests fail without any mutant; fix that first", file=sys.stderr)
            return 1
        for n in names:
            junit = Path(tmp) / f"{n}.xml"
            code, seconds, tail = run_one(n, stop_first=not args.matrix, junit=junit)
            asserted = assertion_failures(junit)
            killed = code == 1 and asserted > 0  # a test failed on an assertion, not a crash
            verdict = (
                "killed"
                if killed
                else ("SURVIVED" if code == 0 else f"NOT KILLED (pytest exit {code}, {asserted} assertion failures)")
            )
            print(f"{n:32s} {verdict:10s} {seconds:6.1f} s", flush=True)
            if not killed:
                survivors.append(n)
                print(tail)
            if args.matrix and junit.exists():
                pinned_junit = Path(tmp) / f"{n}-pinned.xml"
                run_one(n, stop_first=False, junit=pinned_junit, marks="pinned")
                pinned = _per_file(pinned_junit) if pinned_junit.exists() else {}
                rows.append((n, _per_file(junit), pinned))
    print(f"{len(names) - len(survivors)}/{len(names)} mutants killed in {time.perf_counter() - t_all:.0f} s")
    if args.matrix and rows:
        write_matrix(rows, args.out)
    if survivors:
        print(f"mutants that the equivariance tests did not kill: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


def write_matrix(rows, out: Path) -> None:
    """Kill matrix: failed/total tests per (mutant, test file), as Markdown and CSV; the pinned
    tests (numbers recorded from this code) in a column of their own, not counted as kills."""
    import pandas as pd

    from sesn.report.artefacts import write_table

    files = sorted({f for _, per, _ in rows for f in per}, key=lambda f: (TEST_ORDER + [f]).index(f))
    records = []
    for name, per, pinned in rows:
        rec = {"mutant": name, "group": MUTANTS[name].group}
        for f in files:
            failed, total = per.get(f, (0, 0))
            rec[f] = f"{failed}/{total}"
        failed, total = (sum(v[i] for v in pinned.values()) for i in (0, 1))
        rec["pinned numbers (not counted)"] = f"{failed}/{total}"
        records.append(rec)
    df = pd.DataFrame(records)
    intro = [
        "# Kill matrix: tests failed on an assertion / tests run, per mutant and test file",
        "",
        "Skipped and xfailed tests are not counted; a crash (e.g. a shape error) or a strict XPASS "
        "is not a failure here. Property and exactness tests only in the file columns; the tests "
        "marked `pinned` (numbers recorded from this code, which any change moves) in the last "
        "column, which does not count towards a kill.",
        "",
        "Regenerate: `python -m equivariance_tests.mutants run --matrix` (hypothesis profile `mutant`).",
        "",
    ]
    write_table(df, out, "kill_matrix", intro)
    print(f"wrote {out / 'kill_matrix.md'}")


if __name__ == "__main__":
    sys.exit(main())
