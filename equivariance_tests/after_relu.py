"""Basis R after a nonlinearity: T -> ReLU -> H stacks under both rescale protocols.

Basis R exists to stay equivariant after a ReLU, where basis D is not much better than the
Hermite bases (docs/optimised-basis.md). Its property tests (``test_after_relu.py``) draw a
configuration (DISCO's scales or a paper model's), a rescale protocol ("centre": this
project's :func:`sesn.transforms.rescale`; "corner": ``F.interpolate`` anchored at the
corner, :func:`sesn.transforms.rescale_corner`), weights and smooth inputs, and assert

* Delta of basis R's stack (scale step 1) <= the configuration's measured tolerance, and
* Delta_R x ratio <= Delta_D of the same stack with basis D on the same draw,

with both numbers per (configuration, protocol) in ``after_relu_tolerances.csv``, written by

    python -m equivariance_tests.after_relu [--draws 48] [--corner-draws 12]

(tolerance = SAFETY x the largest Delta_R over the draws; ratio = half the smallest D/R ratio
over the draws, rounded down to one decimal; rows whose ratio would be below 1.5 are not
tested against D). The first ``--corner-draws`` draws of each row sit at the corner of the
tests' draw space (fewest channels, smallest canvas, sharpest inputs), where Delta_R spreads
widest (the measurement behind this: docs/optimised-basis.md).
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
from pathlib import Path
from types import SimpleNamespace

import torch

from sesn.basis.registry import basis_kind
from sesn.equivariance import scale_equivariance
from sesn.models.mnist_configs import MNIST_SES_CONFIGS
from sesn.testing.tolerance import SAFETY, round_up
from sesn.transforms import RESCALES, smooth_random_field

CSV = Path(__file__).with_name("after_relu_tolerances.csv")
CHANNELS = (2, 3, 4)
SIZES = (48, 64)
BLURS = (1.5, 2.0, 2.5)
MIN_RATIO = 1.5


def configs() -> dict:
    """name -> layer configuration (kernel, effective size, scales, mult, max_order)."""
    disco = basis_kind("DISCO").configurations["mnist"]
    out = {"disco_scales": SimpleNamespace(kernel_size=disco["kernel_size"], effective_size=disco["effective_size"],
                                           scales=tuple(disco["scales"]), mult=disco["mult"], max_order=4)}  # fmt: skip
    for name, c in MNIST_SES_CONFIGS.items():
        out[name] = SimpleNamespace(kernel_size=c.kernel_size, effective_size=c.effective_size, scales=c.scales,
                                    mult=c.mult, max_order=c.max_order)  # fmt: skip
    return out


def measure_case(config: str, protocol: str, basis: str, seed: int, channels: int, size: int, blur: float) -> float:
    """Delta (step 1) of T -> ReLU -> H with ``basis``, float64."""
    from sesn.models.method_layers import ses_stack

    cfg = configs()[config]
    x = smooth_random_field((2, 1, size, size), torch.Generator().manual_seed(seed), blur=blur)
    torch.manual_seed(seed)
    stack = ses_stack(2, channels, cfg, basis).double().eval()
    return scale_equivariance(stack, x, 1, cfg.scales, rescale_fn=RESCALES[protocol]).delta


@functools.lru_cache(maxsize=1)
def table() -> dict:
    """(config, protocol) -> {"tolerance": float, "ratio": float} from the CSV."""
    with open(CSV, newline="") as f:
        return {
            (r["config"], r["protocol"]): {"tolerance": float(r["tolerance"]), "ratio": float(r["ratio"])}
            for r in csv.DictReader(f)
        }


def main(argv=None) -> int:
    import random

    from tqdm import tqdm

    from sesn.io import atomic_write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", type=int, default=48, help="draws per configuration and protocol")
    p.add_argument("--corner-draws", type=int, default=12,
                   help="of them, this many with the fewest channels, smallest canvas and sharpest inputs")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    lines = ["config,protocol,draws,r_median,r_max,tolerance,d_min,ratio_min,ratio"]
    jobs = [(c, pr) for c in configs() for pr in RESCALES]
    for config, protocol in tqdm(jobs, desc="configurations x protocols"):
        r, d = [], []
        for k in range(args.draws):
            if k < args.corner_draws:
                draw = dict(seed=rng.randrange(2**31), channels=min(CHANNELS), size=min(SIZES), blur=min(BLURS))
            else:
                draw = dict(seed=rng.randrange(2**31), channels=rng.choice(CHANNELS), size=rng.choice(SIZES),
                            blur=rng.choice(BLURS))  # fmt: skip
            r.append(measure_case(config, protocol, "R", **draw))
            d.append(measure_case(config, protocol, "D", **draw))
        ratios = sorted(dv / rv for dv, rv in zip(d, r))
        ratio = math.floor(ratios[0] / 2 * 10) / 10
        ratio = ratio if ratio >= MIN_RATIO else 0.0
        r_sorted = sorted(r)
        lines.append(
            f"{config},{protocol},{args.draws},{r_sorted[len(r) // 2]:.4g},{r_sorted[-1]:.4g},"
            f"{round_up(SAFETY * r_sorted[-1]):.2g},{min(d):.4g},{ratios[0]:.4g},{ratio:g}"
        )
    atomic_write_text(CSV, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
