"""Measure the worst rescaling Delta over the property tests' strategy space.

    python -m equivariance_tests.measure_tolerances [--seed 0] [--limit N]

Walks the full grid of configurations that :mod:`equivariance_tests.strategies` draws
from (scales, kernel/effective sizes, basis, mult), with a random image size, blur and
input seed for each, builds a
randomly initialised layer (float64) of each kind (th: T->H; hh: H->H scale_size 1;
hh_interscale: H->H scale_size 2), measures Delta with
:func:`sesn.equivariance.scale_equivariance` for every step, and prints the worst and
the 99th percentile per (kind, basis, step), plus the smallest plain-conv/SES ratio.
The tolerances in ``tolerances.py`` are printed at the end (worst case x --safety).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import math
import random

import numpy as np
import torch
from tqdm import tqdm

from sesn.equivariance import plain_conv_baseline, scale_equivariance
from sesn.nn import SESConv_H_H, SESConv_Z2_H
from sesn.transforms import smooth_random_field

from equivariance_tests.strategies import (
    BLURS,
    EFFECTIVE_SIZES,
    IMAGE_SIZES,
    KERNEL_SIZES,
    MULTS,
    NUM_SCALES,
    SCALE_FACTORS,
    SUPPORT_RATIOS,
    PAPER_CONFIGS,
    config_from_choices,
    paper_config,
)


def all_configs():
    """Every configuration the strategy can draw (the full grid of its lists)."""
    for k, factor, s, support, eff, bt, mult in itertools.product(
        KERNEL_SIZES, SCALE_FACTORS, NUM_SCALES, SUPPORT_RATIOS, EFFECTIVE_SIZES, "AB", MULTS
    ):
        if bt == "A" and mult != MULTS[0]:
            continue
        cfg = config_from_choices(k, factor, s, support, eff, bt, mult)
        if cfg is not None:
            yield cfg


def measure_one(cfg, rng, worst, ratios, key_prefix=()):
    kw = cfg.kwargs()
    n = rng.choice(IMAGE_SIZES)
    blur = rng.choice(BLURS)
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    cin = rng.randint(1, 3)
    s = len(cfg.scales)
    for kind in ("th", "hh", "hh_interscale"):
        torch.manual_seed(rng.randrange(2**31))
        if kind == "th":
            layer = SESConv_Z2_H(cin, 2, padding=cfg.kernel_size // 2, **kw).double()
            x = smooth_random_field((2, cin, n, n), g, blur=blur)
        else:
            layer = SESConv_H_H(cin, 2, 1 if kind == "hh" else 2, padding=cfg.kernel_size // 2, **kw).double()
            x = smooth_random_field((2, cin, s, n, n), g, blur=blur)
        for t in range(1, s):
            r = scale_equivariance(layer, x, t)
            c = plain_conv_baseline(layer, x, t, generator=g)
            key = key_prefix + (kind, cfg.basis_type, t)
            worst[key].append(r.delta)
            ratios[key].append(c.delta / r.delta)


def report(worst, ratios, title):
    print(f"\n## {title}")
    print(f"{'key':45s} {'n':>4s} {'max Delta':>10s} {'p99':>10s} {'median':>10s} {'min conv/SES':>12s}")
    for key in sorted(worst):
        v = np.array(worst[key])
        print(f"{str(key):45s} {len(v):4d} {v.max():10.3e} {np.quantile(v, 0.99):10.3e} {np.median(v):10.3e} {min(ratios[key]):12.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="measure only the first N configurations")
    p.add_argument("--draws", type=int, default=4, help="random draws (weights, input) per grid configuration")
    p.add_argument("--paper-draws", type=int, default=24, help="random draws per paper configuration")
    p.add_argument("--safety", type=float, default=2.0, help="tolerance = worst case x safety")
    p.add_argument("--only", choices=["grid", "paper"], default=None, help="measure only one of the two tables")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    worst, ratios = collections.defaultdict(list), collections.defaultdict(list)
    grid = [] if args.only == "paper" else list(all_configs())[: args.limit]
    for cfg in tqdm(grid, desc="strategy grid"):
        for _ in range(args.draws):
            measure_one(cfg, rng, worst, ratios)
    report(worst, ratios, "strategy grid: (kind, basis, step)")
    grid_worst = dict(worst)
    worst, ratios = collections.defaultdict(list), collections.defaultdict(list)
    for name in tqdm([] if args.only == "grid" else PAPER_CONFIGS, desc="paper configs"):
        for basis in "AB":
            for _ in range(args.paper_draws):
                measure_one(paper_config(name, basis), rng, worst, ratios, (name,))
    report(worst, ratios, "paper configs: (config, kind, basis, step)")
    print(f"\n## tolerances.py (worst case x {args.safety}, rounded up to 2 significant digits)")
    if grid_worst:
        print(python_table("RESCALE", grid_worst, args.safety))
    if worst:
        print(python_table("RESCALE_PAPER", dict(worst), args.safety))


def python_table(name: str, worst: dict, safety: float) -> str:
    lines = [f"{name} = {{"]
    for key in sorted(worst):
        tol = safety * max(worst[key])
        e = math.floor(math.log10(tol)) - 1
        tol = float(f"{math.ceil(tol / 10**e) * 10**e:.2g}")
        lines.append(f"    {key!r}: {tol!r},")
    return "\n".join(lines + ["}"])


if __name__ == "__main__":
    main()
