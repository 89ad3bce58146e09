"""Equivariance of every method vs depth, scale step and scale pair (issue "Beyond the
paper"), on smooth random fields and on real MNIST-scale digits.

    sesn report methods [--out results/methods] [--depth 6] [--config mnist_ses_scalar_28]

Stacks of L = 1..depth random-init layers (4 channels): SESN T->H followed by
[ReLU, H->H scale_size 1] x (L-1) with Hermite A, Hermite B or the optimised bases D and R
(measured with the joint rescale + scale shift, per pair factor sigma_i/sigma_(i+t));
the T->T methods of sesn.models.method_layers (CNN, SI-ConvNet, SiCNN, DSS, SEVF scalar,
SS-CNN, and any registered there) as L layers with
ReLU between, measured with the plain rescale at the same factors (mean over the pairs).
A second section measures SESN stacks with Hermite A, B, our D and R and DISCO's own
published basis at DISCO's scales (docs/optimised-basis.md), under this project's rescale
and, at step 1, under an independent one (F.interpolate anchored at the corner). A third section
gives every method's infinitesimal scale equivariance, the relative Lie derivative of
:func:`sesn.equivariance.scale_lie_derivative` (one layer and ``--depth`` layers; SESN with the
scale-axis derivative on its scale grid and of its layers' own scale family), beside
t^2 x LEE (t = log sigma_1/sigma_0, the first-order estimate of Delta at step 1) and with the
per-layer attribution at full depth. Writes ``methods.md``, ``methods_depth.csv``,
``methods_pairs.csv``, ``methods_disco.csv``, ``methods_lie.csv``, ``methods_lie_layers.csv``
and ``methods_depth.png``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sesn.basis.disco import DiscoBasisError
from sesn.basis.registry import report_bases
from sesn.data import mnist_scale as ms
from sesn.equivariance import PROTOCOL, rescale_equivariance, scale_equivariance, scale_lie_derivative
from sesn.models.method_layers import METHOD_LAYERS, ses_stack
from sesn.models.method_layers import describe as describe_methods
from sesn.models.mnist_configs import MNIST_SES_CONFIGS
from sesn.nn import dispatch
from sesn.report.artefacts import atomic_write_text, dataframe_to_markdown, save_figure
from sesn.report.equivariance import DISCO_CONFIG, REPORT_PATH
from sesn.transforms import rescale_corner, smooth_random_field


def get_args_parser(add_help=True):
    p = argparse.ArgumentParser(
        "sesn report methods",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    p.add_argument("--out", type=Path, default=Path("results/methods"))
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--config", default="mnist_ses_scalar_28", choices=sorted(MNIST_SES_CONFIGS))
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--digits",
        type=Path,
        default=None,
        help="MNIST-scale realization folder (default: build a reduced one from local digits if found)",
    )
    return p


def t_to_t_stacks(depth, channels):
    """Every T -> T method of the catalogue as ``depth`` layers with ReLU between."""
    return {name: m.stack(depth, channels) for name, m in METHOD_LAYERS.items()}


def digit_inputs(args, n):
    """Real MNIST-scale digits on the centre of a zero canvas, or None with a reason."""
    import numpy as np

    folder = args.digits
    if folder is None:
        try:
            from sesn.data.sources import load_digits

            digits = load_digits("mnist")
        except FileNotFoundError as e:
            return None, str(e)
        folder = args.out / "data" / "mnist_scale" / ms.realization_name("mnist", 0, True)
        if not (folder / "manifest.json").exists():
            folder = ms.generate(digits, 0, args.out / "data", reduced=True, progress=False, overwrite=True)
    test = ms.load_split(folder, "test")
    imgs = torch.from_numpy(test["images"][:n].astype(np.float64) / 255.0)
    canvas = torch.zeros(n, 1, args.size, args.size, dtype=torch.float64)
    o = (args.size - 28) // 2
    canvas[:, 0, o : o + 28, o : o + 28] = imgs
    return canvas, f"{n} test digits of {folder}"


def measure(args, x, label, rows, pair_rows):
    cfg = MNIST_SES_CONFIGS[args.config]
    scales = list(cfg.scales)
    steps = range(1, len(scales))
    jobs = [("ses", k.name) for k in report_bases(cfg)] + [("t2t", None)]
    for kind, basis in tqdm(jobs, desc=f"{label}: methods", leave=False):
        for depth in range(1, args.depth + 1):
            torch.manual_seed(args.seed)
            if kind == "ses":
                model = ses_stack(depth, args.channels, cfg, basis).double().eval()
                for t in steps:
                    r = scale_equivariance(model, x, t, scales)
                    rows.append(dict(inputs=label, method=f"SESN basis {basis}", basis=basis, depth=depth, step=t,
                                     delta=r.delta))  # fmt: skip
                    if depth in (1, args.depth):
                        for pair, d in r.per_pair.items():
                            pair_rows.append(
                                dict(
                                    inputs=label,
                                    method=f"SESN basis {basis}",
                                    basis=basis,
                                    depth=depth,
                                    pair=f"{pair[0]}-{pair[1]}",
                                    delta=d,
                                )
                            )
            else:
                for name, model in t_to_t_stacks(depth, args.channels).items():
                    model = model.double().eval()
                    for t in steps:
                        per = {
                            (i, i + t): rescale_equivariance(model, x, scales[i] / scales[i + t])
                            for i in range(len(scales) - t)
                        }
                        rows.append(
                            dict(
                                inputs=label,
                                method=name,
                                basis="",
                                depth=depth,
                                step=t,
                                delta=sum(per.values()) / len(per),
                            )  # fmt: skip
                        )
                        if depth in (1, args.depth):
                            for pair, d in per.items():
                                pair_rows.append(
                                    dict(
                                        inputs=label,
                                        method=name,
                                        basis="",
                                        depth=depth,
                                        pair=f"{pair[0]}-{pair[1]}",
                                        delta=d,
                                    )  # fmt: skip
                                )


def measure_lie(args, x, label, rows, layer_rows) -> None:
    """The relative Lie derivative of every method at depth 1 and ``--depth`` (docs/equivariance.md)."""
    cfg = MNIST_SES_CONFIGS[args.config]
    scales = list(cfg.scales)
    t = math.log(scales[1] / scales[0])
    depths = sorted({1, args.depth})
    jobs = [(f"SESN basis {k.name}", k.name) for k in report_bases(cfg)] + [(name, None) for name in METHOD_LAYERS]
    for name, basis in tqdm(jobs, desc=f"{label}: Lie derivative", leave=False):
        for depth in depths:
            torch.manual_seed(args.seed)
            if basis is not None:
                model = ses_stack(depth, args.channels, cfg, basis).double().eval()
            else:
                model = METHOD_LAYERS[name].stack(depth, args.channels).double().eval()
            r = scale_lie_derivative(model, x, scales, layers=depth == args.depth)
            cont = scale_lie_derivative(model, x, scales, scale_derivative="layers").lee if basis else math.nan
            rows.append(dict(inputs=label, method=name, basis=basis or "", depth=depth, lee=r.lee, lee_layers=cont,
                             t2_lee=t * t * r.lee, method_of_jvp=r.method))  # fmt: skip
            for layer, share in r.per_layer.items():
                layer_rows.append(dict(inputs=label, method=name, depth=depth, layer=layer, lee=share))


def measure_at_disco_scales(args, x, label, rows) -> str:
    """SESN stacks with Hermite A, B, our D and R and DISCO's own basis at DISCO's scales (the
    only ones it is published for), same inputs: every step under this project's rescale, and
    step 1 under the independent one (``F.interpolate``, :func:`sesn.transforms.rescale_corner`)
    too; returns a note if DISCO's file is missing."""
    from types import SimpleNamespace

    cfg = SimpleNamespace(max_order=4, span_sigma=None, **DISCO_CONFIG)
    note = ""
    for kind in report_bases(cfg):  # every basis of the registry at DISCO's scales, DISCO's own among them
        basis = kind.name
        for depth in range(1, args.depth + 1):
            torch.manual_seed(args.seed)
            try:
                model = ses_stack(depth, args.channels, cfg, basis).double().eval()
            except DiscoBasisError as e:
                note = f"DISCO's rows are missing: {e}"
                break
            name = kind.title if kind.fixed else f"SESN basis {basis}"
            cases = [("ours", t, None) for t in range(1, len(cfg.scales))] + [("independent", 1, rescale_corner)]
            for protocol, t, op in cases:
                delta = scale_equivariance(model, x, t, cfg.scales, rescale_fn=op).delta
                rows.append(dict(inputs=label, protocol=protocol, method=name, basis=basis, depth=depth, step=t,
                                 delta=delta))  # fmt: skip
    return note


def lie_section(args, lie, lie_layers, df) -> list[str]:
    """Markdown: the Lie derivative table per input, beside Delta at step 1, and the attribution."""
    scales = list(MNIST_SES_CONFIGS[args.config].scales)
    t = math.log(scales[1] / scales[0])
    md = ["", "## Infinitesimal scale equivariance: the relative Lie derivative (LEE)", "",
          "LEE = ||L f(x)||^2 / ||f(x)||^2 on the central crop, L f(x) = d/dt [rho(g_t)^-1 f(rho(g_t) x)] at t = 0 "
          "for rescaling about the centre (sesn.equivariance.scale_lie_derivative; generator: the derivative of "
          "the Keys cubic interpolation, i.e. central differences; on H outputs also minus d/d log sigma). "
          "`LEE (grid)`: d/d log sigma as a finite difference on the layer's own scales (what any module gets); "
          "`LEE (layers)`: d/d log sigma of the steerable layers' own scale family (bases rebuilt at sigma e^h). "
          f"`t^2 LEE`: with t = log(sigma_1 / sigma_0) = {t:.3f}, the first-order estimate of Delta at step 1, "
          "beside the measured `Delta step 1` (SESN: joint rescale + scale shift; T->T: plain rescale)."]  # fmt: skip
    for label in dict.fromkeys(lie.inputs):
        sub = lie[lie.inputs == label].copy()
        d1 = df[(df.inputs == label) & (df.step == 1)].set_index(["method", "depth"]).delta
        sub["Delta step 1"] = [d1.get((m, d), math.nan) for m, d in zip(sub.method, sub.depth)]
        table = sub[["method", "depth", "lee", "lee_layers", "t2_lee", "Delta step 1"]].rename(
            columns={"lee": "LEE (grid)", "lee_layers": "LEE (layers)", "t2_lee": "t^2 LEE (grid)"}
        )
        md += ["", f"### {label}", "", dataframe_to_markdown(table)]
        att = lie_layers[(lie_layers.inputs == label) & (lie_layers.depth == args.depth)]
        if len(att):
            p = att.pivot_table(index="method", columns="layer", values="lee", sort=False)
            md += ["", f"Per-layer attribution at depth {args.depth} (||J_(>i) L m_i||^2 / ||f||^2 of each module "
                   "of the stack, in order; `(rest)`: what no module covers):", "",
                   dataframe_to_markdown(p.reset_index())]  # fmt: skip
    return md


def plot(df, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    inputs = list(dict.fromkeys(df.inputs))
    fig, axes = plt.subplots(1, len(inputs), figsize=(6 * len(inputs), 4), squeeze=False, sharey=True)
    for ax, label in zip(axes[0], inputs):
        sub = df[(df.inputs == label) & (df.step == 1)]
        for method, g in sub.groupby("method", sort=False):
            ax.semilogy(
                g.depth, g.delta, marker="o", label=method, linestyle="-" if method.startswith("SESN") else "--"
            )
        ax.set_title(f"{label}: Delta vs depth (scale step 1)", fontsize=9)
        ax.set_xlabel("stacked layers")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("Delta")
    axes[0, -1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


def main(args) -> int:
    """The report; steerable layers on the FFT path where they have one (as the equivariance
    report: the numbers do not depend on the path, and no layer shape is timed)."""

    with dispatch.forcing(REPORT_PATH):
        return _main(args)


def _main(args) -> int:
    import pandas as pd

    t0 = time.perf_counter()
    rows, pair_rows = [], []
    g = torch.Generator().manual_seed(args.seed)
    inputs = [("smooth fields", smooth_random_field((args.batch, 1, args.size, args.size), g, blur=1.5))]
    digits, why = digit_inputs(args, args.batch)
    if digits is not None:
        inputs.append(("MNIST-scale digits", digits))
    disco_rows, disco_note, lie_rows, lie_layer_rows = [], "", [], []
    for label, x in tqdm(inputs, desc="inputs"):
        measure(args, x, label, rows, pair_rows)
        disco_note = measure_at_disco_scales(args, x, label, disco_rows)
        measure_lie(args, x, label, lie_rows, lie_layer_rows)
    df, pairs, disco = pd.DataFrame(rows), pd.DataFrame(pair_rows), pd.DataFrame(disco_rows)
    lie, lie_layers = pd.DataFrame(lie_rows), pd.DataFrame(lie_layer_rows)
    out = args.out
    atomic_write_text(out / "methods_lie.csv", lie.to_csv(index=False))
    atomic_write_text(out / "methods_lie_layers.csv", lie_layers.to_csv(index=False))
    atomic_write_text(out / "methods_disco.csv", disco.to_csv(index=False))
    atomic_write_text(out / "methods_depth.csv", df.to_csv(index=False))
    atomic_write_text(out / "methods_pairs.csv", pairs.to_csv(index=False))
    md = [
        "# Equivariance of every method: depth, scale step, scale pair",
        "",
        f"Generated by `sesn report methods --config {args.config} --depth {args.depth} "
        f"--channels {args.channels} --batch {args.batch} --size {args.size} --seed {args.seed}`. "
        f"Scales of {args.config}: {list(MNIST_SES_CONFIGS[args.config].scales)}. SESN: {PROTOCOL}. "
        "T->T methods: plain rescale at the same pair factors, mean over pairs. "
        f"Inputs: smooth fields (blur 1.5 px) and {why if digits is None else why}. One layer of each T->T method:",
        "",
        *describe_methods(),
    ]
    for label in dict.fromkeys(df.inputs):
        sub = df[df.inputs == label]
        depth = sub[sub.step == 1].pivot_table(index="method", columns="depth", values="delta", sort=False)
        depth.columns = [f"depth {c}" for c in depth.columns]
        steps = sub[sub.depth == 1].pivot_table(index="method", columns="step", values="delta", sort=False)
        steps.columns = [f"step {c}" for c in steps.columns]
        md += [
            "",
            f"## {label}: Delta vs depth (step 1)",
            "",
            dataframe_to_markdown(depth.reset_index()),
            "",
            f"## {label}: Delta vs scale step (one layer)",
            "",
            dataframe_to_markdown(steps.reset_index()),
        ]
        p = pairs[(pairs.inputs == label) & (pairs.depth == 1)].pivot_table(
            index="method", columns="pair", values="delta", sort=False
        )
        md += ["", f"## {label}: Delta per scale pair (one layer)", "", dataframe_to_markdown(p.reset_index())]

    md += ["", f"## Ours vs DISCO's own basis at DISCO's scales {DISCO_CONFIG['scales']} "
           f"(kernel {DISCO_CONFIG['kernel_size']}, "
           "effective size 7): Delta vs depth (step 1) and vs step (one layer)"]  # fmt: skip
    md += ["", "Protocol 'ours' as above; 'independent': the same inputs and layers, the rescale replaced by "
           "F.interpolate(scale_factor=a, bicubic, antialias=True) anchored at the top-left corner "
           "(sesn.transforms.rescale_corner), step 1."]  # fmt: skip
    for label in dict.fromkeys(disco.inputs) if len(disco) else ():
        sub = disco[disco.inputs == label]
        for protocol in dict.fromkeys(sub.protocol):
            part = sub[(sub.protocol == protocol) & (sub.step == 1)]
            depth = part.pivot_table(index="method", columns="depth", values="delta", sort=False)
            depth.columns = [f"depth {c}" for c in depth.columns]
            md += ["", f"### {label}, protocol {protocol}: Delta vs depth (step 1)", "",
                   dataframe_to_markdown(depth.reset_index())]  # fmt: skip
        ours = sub[sub.protocol == "ours"]
        steps = ours[ours.depth == 1].pivot_table(index="method", columns="step", values="delta", sort=False)
        steps.columns = [f"step {c}" for c in steps.columns]
        md += ["", f"### {label}, protocol ours: Delta vs scale step (one layer)", "",
               dataframe_to_markdown(steps.reset_index())]  # fmt: skip
    if disco_note:
        md += ["", disco_note]
    md += lie_section(args, lie, lie_layers, df)
    atomic_write_text(out / "methods.md", "\n".join(md) + "\n")
    plot(df, out / "methods_depth.png")
    print("\n".join(md))
    print(
        f"wrote {out}/methods.md, methods_depth.csv, methods_pairs.csv, methods_depth.png "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return 0
