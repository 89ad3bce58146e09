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

import torch
import torch.nn.functional as F

import sesn.equivariance
import sesn.nn.steerable
import sesn.transforms
from sesn.basis import BasisSpec
from sesn.basis import basis_tensor as true_basis_tensor
from sesn.nn import SESConv_H_H, SESMaxProjection, SESMeanProjection

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV = "SESN_MUTANT"
WRONG_SIGMA_FACTOR = 1.1  # the wrong_sigma mutant builds the largest scale at 1.1 x sigma


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


BASIS_MUTATIONS: dict[str, Callable[[torch.Tensor, BasisSpec], torch.Tensor]] = {
    f.__name__: f
    for f in (
        no_steering,
        unscaled_crop,
        scale_index_off_by_one,
        reversed_scale_order,
        per_scale_renormalisation,
        wrong_sigma,
        sigma_one_percent,
    )
}


def mutated_basis_tensor(mutation):
    """A drop-in for ``basis_tensor`` that returns the mutated basis."""

    def basis_tensor(spec: BasisSpec, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return mutation(true_basis_tensor(spec, dtype=torch.float64), spec).to(dtype)

    return basis_tensor


# --- layer and measurement mutants ----------------------------------------------------------

_true_rescale = sesn.transforms.rescale


def _tap_offset_padded(self, x):
    # taps read one scale too far: output i sees inputs i+1 .. i+K (zero past the largest)
    return F.pad(x, (0, 0, 0, 0, 0, self.scale_size))[:, :, 1:]


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
    group: str  # "steering", "layer" or "measurement"
    description: str
    patches: tuple  # (target object, attribute, replacement)

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
            "hh_tap_offset",
            "layer",
            "H->H taps read at the wrong scale offset (output i sees inputs i+1..i+K)",
            ((SESConv_H_H, "_padded", _tap_offset_padded),),
        ),
        Mutant(
            "projection_wrong_axis",
            "layer",
            "max/mean projections reduce over channels instead of scales",
            ((SESMaxProjection, "forward", _max_over_channels), (SESMeanProjection, "forward", _mean_over_channels)),
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


def run_one(name: str | None, stop_first: bool, junit: Path, timeout: float = 1800) -> tuple[int, float, str]:
    """pytest over the equivariance tests with mutant ``name`` active (None: no mutant);
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print the catalogue")
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
                rows.append((n, _per_file(junit)))
    print(f"{len(names) - len(survivors)}/{len(names)} mutants killed in {time.perf_counter() - t_all:.0f} s")
    if args.matrix and rows:
        write_matrix(rows, args.out)
    if survivors:
        print(f"mutants that the equivariance tests did not kill: {', '.join(survivors)}", file=sys.stderr)
        return 1
    return 0


def write_matrix(rows, out: Path) -> None:
    """Kill matrix: failed/total tests per (mutant, test file), as Markdown and CSV."""
    import pandas as pd

    from sesn.io import atomic_write_text
    from sesn.report.io import dataframe_to_markdown

    files = sorted({f for _, per in rows for f in per}, key=lambda f: (TEST_ORDER + [f]).index(f))
    records = []
    for name, per in rows:
        rec = {"mutant": name, "group": MUTANTS[name].group}
        for f in files:
            failed, total = per.get(f, (0, 0))
            rec[f] = f"{failed}/{total}"
        records.append(rec)
    df = pd.DataFrame(records)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "kill_matrix.csv", df.to_csv(index=False))
    md = [
        "# Kill matrix: tests failed on an assertion / tests run, per mutant and test file",
        "",
        "Skipped and xfailed tests are not counted; a crash (e.g. a shape error) or a strict XPASS "
        "is not a failure here.",
        "",
        "Regenerate: `python -m equivariance_tests.mutants run --matrix` (hypothesis profile `mutant`).",
        "",
        dataframe_to_markdown(df),
    ]
    atomic_write_text(out / "kill_matrix.md", "\n".join(md) + "\n")
    print(f"wrote {out / 'kill_matrix.md'}")


if __name__ == "__main__":
    sys.exit(main())
