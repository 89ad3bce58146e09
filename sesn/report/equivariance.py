"""Equivariance report: Delta of T->H, H->H (scale_size 1 and 2) and a plain conv, for
every basis of the registry (Hermite A and B, the optimised D, R and W, and any registered:
``sesn.basis.registry.report_bases``) at the scale configurations of the paper's MNIST models, on smooth random
fields (no download); every method on the same inputs; our optimised bases D and R beside
DISCO's published basis; and stacks (with and without ReLU) under two rescale protocols.

    sesn report equivariance [--out results/equivariance] [--size 64] [--batch 4] [--seed 0]

Writes ``equivariance.md``, ``equivariance.csv`` (one row per config, layer, basis, step),
``equivariance_pairs.csv`` (per scale pair), ``equivariance_methods.csv``,
``equivariance_disco.csv``, ``equivariance_stacks.csv`` and ``equivariance.png`` (Delta vs
scale step).
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import torch
from tqdm import tqdm

from sesn.basis.disco import DiscoBasisError
from sesn.basis.registry import basis_kind, report_bases, spec_arguments
from sesn.basis.spec import R_SPAN_RATIO
from sesn.equivariance import PROTOCOL, PROTOCOL_CORNER, plain_conv_baseline, rescale_equivariance, scale_equivariance
from sesn.errors import InputError
from sesn.models.method_layers import METHOD_LAYERS, ses_stack
from sesn.models.method_layers import describe as describe_methods
from sesn.models.mnist_configs import MNIST_SES_CONFIGS, layer_kwargs
from sesn.nn import SESConv_H_H, SESConv_Z2_H, dispatch
from sesn.report.artefacts import atomic_write_text, dataframe_to_markdown, save_figure
from sesn.transforms import rescale, rescale_corner, smooth_random_field

LAYERS = ("T->H", "H->H (scale_size 1)", "H->H (scale_size 2)")
REPORT_PATH = "fft"  # the compute path of every steerable layer of the report (where supported)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn report equivariance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=add_help,
    )
    p.add_argument("--out", type=Path, default=Path("results/equivariance"), help="output folder")
    p.add_argument("--size", type=int, default=64, help="canvas size of the random fields (px)")
    p.add_argument("--batch", type=int, default=4, help="random fields per measurement")
    p.add_argument("--channels", type=int, default=4, help="output channels of each layer")
    p.add_argument("--blur", type=float, default=1.5, help="Gaussian blur of the white noise (px)")
    p.add_argument("--seed", type=int, default=0, help="seeds the fields and the layer weights")
    p.add_argument("--configs", nargs="*", default=None, help=f"subset of {sorted(MNIST_SES_CONFIGS)}")
    g = p.add_argument_group(
        "the independent protocol of section 'Stacks' (the project's protocol there uses the settings above)"
    )
    g.add_argument("--independent-size", type=int, default=96, help="canvas size (px)")
    g.add_argument("--independent-batch", type=int, default=4, help="random fields")
    g.add_argument("--independent-channels", type=int, default=16, help="channels of every layer")
    g.add_argument("--independent-blur", type=float, default=2.0, help="Gaussian blur of the white noise (px)")
    return p


def measure(args) -> "pandas.DataFrame":  # noqa: F821
    import pandas as pd

    names = args.configs or list(MNIST_SES_CONFIGS)
    unknown = sorted(set(names) - set(MNIST_SES_CONFIGS))
    if unknown:
        raise InputError(f"unknown configuration(s) {unknown}; choose from {sorted(MNIST_SES_CONFIGS)}")
    rows, pair_rows = [], []
    # every basis of the registry available at the configuration's scales (report_bases)
    jobs = [(n, layer, k.name) for n in names for layer in LAYERS for k in report_bases(MNIST_SES_CONFIGS[n])]
    first = {n: report_bases(MNIST_SES_CONFIGS[n])[0].name for n in names}
    for name, layer_kind, basis in tqdm(jobs, desc="measuring Delta", unit="layer"):
        cfg = MNIST_SES_CONFIGS[name]
        scales = list(cfg.scales)
        g = torch.Generator().manual_seed(args.seed)
        torch.manual_seed(args.seed)
        kw = layer_kwargs(cfg, basis)
        if layer_kind == "T->H":
            layer = SESConv_Z2_H(1, args.channels, **kw).double()
            x = smooth_random_field((args.batch, 1, args.size, args.size), g, blur=args.blur)
        else:
            k = 1 if "1" in layer_kind else 2
            layer = SESConv_H_H(2, args.channels, k, **kw).double()
            x = smooth_random_field((args.batch, 2, len(scales), args.size, args.size), g, blur=args.blur)
        for step in range(1, len(scales)):
            r = scale_equivariance(layer, x, step)
            entries = [(layer_kind, basis, r)]
            if basis == first[name]:  # the plain convs do not depend on the basis: measure them once
                kind = layer_kind.split(" ")[0]
                conv = plain_conv_baseline(layer, x, step, generator=torch.Generator().manual_seed(args.seed))
                entries.append((f"{kind} plain conv {cfg.kernel_size}x{cfg.kernel_size}", "-", conv))
                cin = x.shape[1]
                conv7 = torch.nn.Conv2d(cin, args.channels, 7, padding=3, bias=False).double()
                with torch.no_grad():
                    bound = 1.0 / (cin * 49) ** 0.5
                    conv7.weight.copy_(
                        (
                            torch.rand(
                                conv7.weight.shape,
                                generator=torch.Generator().manual_seed(args.seed),
                                dtype=torch.float64,
                            )
                            * 2
                            - 1
                        )
                        * bound
                    )
                entries.append((f"{kind} plain conv 7x7", "-", plain_conv_baseline(layer, x, step, conv=conv7)))
            for kind, b, res in entries:
                factor = (scales[0] / scales[-1]) ** (step / (len(scales) - 1))
                rows.append(
                    dict(
                        config=name,
                        layer=kind,
                        basis=b,
                        step=step,
                        factor=round(factor, 4),
                        delta=res.delta,
                        scales=" ".join(map(str, scales)),
                        kernel_size=cfg.kernel_size,
                    )
                )
                for pair, d in res.per_pair.items():
                    pair_rows.append(
                        dict(
                            config=name,
                            layer=kind,
                            basis=b,
                            step=step,
                            pair=f"{pair[0]}-{pair[1]}",
                            factor=res.factors[pair],
                            delta=d,
                        )
                    )
    return pd.DataFrame(rows), pd.DataFrame(pair_rows)


def baseline_layers(channels: int, seed: int) -> dict:
    """One layer of each T -> T method of the catalogue (:mod:`sesn.models.method_layers`),
    1 input channel, float64, eval mode; measured with the plain rescale protocol."""

    torch.manual_seed(seed)
    return {name: m.layer(channels).double().eval() for name, m in METHOD_LAYERS.items()}


def measure_baselines(args, config: str = "mnist_ses_scalar_28"):
    """Delta of every method on the same inputs and factors (the steps of ``config``):
    SES T->H (every basis of the registry, joint rescale + scale shift) and the T->T baselines (rescale)."""
    import pandas as pd

    cfg = MNIST_SES_CONFIGS[config]
    scales = list(cfg.scales)
    g = torch.Generator().manual_seed(args.seed)
    x = smooth_random_field((args.batch, 1, args.size, args.size), g, blur=args.blur)
    rows = []
    for basis in [k.name for k in report_bases(cfg)]:  # every basis of the registry at these scales
        torch.manual_seed(args.seed)
        layer = SESConv_Z2_H(1, args.channels, **layer_kwargs(cfg, basis)).double()
        for step in range(1, len(scales)):
            rows.append(
                dict(
                    method=f"SESN T->H basis {basis}",
                    basis=basis,
                    step=step,
                    factor=round(scales[0] / scales[step], 4),
                    delta=scale_equivariance(layer, x, step).delta,
                )
            )
    for name, layer in baseline_layers(args.channels, args.seed).items():
        for step in range(1, len(scales)):
            # the same pairs as the SES measurement: mean of Delta over the pair factors, weighted alike
            factors = [scales[i] / scales[i + step] for i in range(len(scales) - step)]
            d = sum(rescale_equivariance(layer, x, a) for a in factors) / len(factors)
            rows.append(dict(method=name, basis="", step=step, factor=round(scales[0] / scales[step], 4), delta=d))
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index="method", columns="step", values="delta", sort=False)
    wide.columns = [f"Delta step {c} (x{scales[0] / scales[c]:.3f})" for c in wide.columns]
    return df, wide.reset_index()


# DISCO publishes its basis for this MNIST configuration only (docs/optimised-basis.md)
_DISCO = basis_kind("DISCO").configurations["mnist"]
DISCO_CONFIG = {**_DISCO, "scales": list(_DISCO["scales"])}

# section "Stacks": depth and ReLU of each stack (sesn.models.method_layers.ses_stack)
STACKS = {"T->H": (1, True), "T->H->H": (2, False), "T->ReLU->H": (2, True), "4 layers, ReLU": (4, True)}


def stack_protocols(args) -> dict:
    """name -> (rescale operator, its text, input settings): this project's protocol with the
    report's own inputs, and an independent one (F.interpolate, other inputs and width)."""
    ours = dict(size=args.size, batch=args.batch, channels=args.channels, blur=args.blur)
    independent = dict(size=args.independent_size, batch=args.independent_batch,
                       channels=args.independent_channels, blur=args.independent_blur)  # fmt: skip
    return {
        "ours": (rescale, PROTOCOL, ours),
        "independent": (rescale_corner, PROTOCOL_CORNER, independent),
    }


def stack_bases(include_disco: bool = True) -> dict:
    """(scale set label -> (config, {row label: (config, basis kind, variant)})) for section
    'Stacks': every basis of the registry available at the scale set (:func:`report_bases`),
    named by its registration, and one ablation (basis R with its span at sigma_0, the paper's
    basis B there: variant "span at sigma_0")."""
    from types import SimpleNamespace

    disco = SimpleNamespace(max_order=4, span_sigma=None, **DISCO_CONFIG)
    paper = MNIST_SES_CONFIGS["mnist_ses_scalar_28"]

    def at_sigma0(cfg):  # the ablation: R's span at sigma_0 (the paper's basis B there)
        return SimpleNamespace(**{f: getattr(cfg, f) for f in ("kernel_size", "effective_size", "scales", "mult")},
                               max_order=4, span_sigma=cfg.scales[0])  # fmt: skip

    def rows(cfg) -> dict:
        out = {}
        for kind in report_bases(cfg):
            if kind.fixed and not include_disco:
                continue
            out[kind.row_label(cfg)] = (cfg, kind.name, "")
            if kind.name == "R":
                out[f"optimised R, span_sigma {cfg.scales[0]:g} (sigma_0)"] = (at_sigma0(cfg), "R", "span at sigma_0")
        return out

    return {
        f"DISCO's scales {DISCO_CONFIG['scales']}": rows(disco),
        f"mnist_ses_scalar_28 {list(paper.scales)}": rows(paper),
    }


def measure_stacks(args):
    """Delta (scale step 1, pooled over the pairs) of SESN stacks -- T->H, T->H->H,
    T->ReLU->H, 4 layers with ReLU -- for every basis, under both protocols of
    :func:`stack_protocols`. Returns (long table, note: empty, or why DISCO's rows are missing)."""
    import pandas as pd

    rows, note = [], ""
    jobs = [(s, name, cfg, b, v) for s, bases in stack_bases().items() for name, (cfg, b, v) in bases.items()]
    for protocol, (op, _, p) in stack_protocols(args).items():
        g = torch.Generator().manual_seed(args.seed)
        x = smooth_random_field((p["batch"], 1, p["size"], p["size"]), g, blur=p["blur"])
        for scale_set, name, cfg, basis, variant in tqdm(jobs, desc=f"stacks, protocol {protocol}", unit="basis"):
            for stack, (depth, relu) in STACKS.items():
                torch.manual_seed(args.seed)
                try:
                    model = ses_stack(depth, p["channels"], cfg, basis, nonlinearity=relu).double().eval()
                except DiscoBasisError as e:
                    note = f"DISCO's rows are missing: {e}"
                    break
                r = scale_equivariance(model, x, 1, cfg.scales, rescale_fn=op)
                rows.append(dict(scales=scale_set, basis=name, basis_kind=basis, variant=variant, protocol=protocol,
                                 stack=stack, delta=r.delta))  # fmt: skip
    return pd.DataFrame(rows), note


def stacks_markdown(df, args, note: str) -> list[str]:
    protocols = stack_protocols(args)
    md = [
        "",
        "## Stacks under two protocols (scale step 1)",
        "",
        "SESN stacks (ses_stack: T->H, then H->H scale_size 1, with or without ReLU between), default "
        "(kaiming-uniform) init, float64, on smooth random fields (white noise blurred, radial window, zero "
        "canvas); Delta pooled over the scale pairs (i, i+1). Two protocols, each with its own rescale "
        "operator and inputs:",
        "",
        *[
            f"- {name}: {text}; {p['batch']} fields, blur {p['blur']} px, {p['size']}x{p['size']} canvas, "
            f"{p['channels']} channels"
            for name, (_, text, p) in protocols.items()
        ],
        "",
        "Basis R: the optimised basis with a Hermite-B span at the smallest scale (sigma span_sigma, default "
        f"{R_SPAN_RATIO} sigma_0), fitted on rectified smooth noise (docs/optimised-basis.md).",
    ]
    for scale_set in dict.fromkeys(df.scales) if len(df) else ():
        for protocol in protocols:
            sub = df[(df.scales == scale_set) & (df.protocol == protocol)]
            wide = sub.pivot_table(index="basis", columns="stack", values="delta", sort=False)
            md += ["", f"### {scale_set}, protocol: {protocol}", "", dataframe_to_markdown(wide.reset_index())]
    return md + (["", note] if note else [])


def measure_disco(args):
    """Delta of T->H and H->H (scale_size 1) layers with Hermite A, Hermite B, our optimised
    basis D and DISCO's own published basis, at DISCO's scales, on the same inputs.
    Returns (long table, wide table, a note: empty, or why DISCO's row is missing)."""
    import pandas as pd

    c = DISCO_CONFIG
    g = torch.Generator().manual_seed(args.seed)
    x_t = smooth_random_field((args.batch, 1, args.size, args.size), g, blur=args.blur)
    x_h = smooth_random_field((args.batch, 2, len(c["scales"]), args.size, args.size), g, blur=args.blur)
    from types import SimpleNamespace

    at = SimpleNamespace(max_order=None, span_sigma=None, **c)
    bases = {k.title: (k.name, dict(basis_type=k.name, **spec_arguments(k.name, at))) for k in report_bases(at)}
    rows, note = [], ""
    for name, (basis, kw) in bases.items():
        for kind in ("T->H", "H->H (scale_size 1)"):
            torch.manual_seed(args.seed)
            common = dict(
                kernel_size=c["kernel_size"],
                effective_size=c["effective_size"],
                scales=c["scales"],
                padding=c["kernel_size"] // 2,
                **kw,
            )
            try:
                layer = (
                    SESConv_Z2_H(1, args.channels, **common)
                    if kind == "T->H"
                    else SESConv_H_H(2, args.channels, 1, **common)
                )
            except DiscoBasisError as e:
                note = f"DISCO's row is missing: {e}"
                break
            layer = layer.double()
            for step in range(1, len(c["scales"])):
                delta = scale_equivariance(layer, x_t if kind == "T->H" else x_h, step).delta
                rows.append(
                    dict(
                        basis=name,
                        basis_kind=basis,
                        layer=kind,
                        step=step,
                        factor=round(c["scales"][0] / c["scales"][step], 4),
                        delta=delta,
                    )
                )
    df = pd.DataFrame(rows)
    wide = df.pivot_table(index=["layer", "basis"], columns="step", values="delta", sort=False)
    wide.columns = [f"Delta step {t} (x{c['scales'][0] / c['scales'][t]:.3f})" for t in wide.columns]
    return df, wide.reset_index(), note


def summary_table(df):
    """Rows: config x layer x basis; columns: Delta at step 1, 2, 3."""
    wide = df.pivot_table(index=["config", "layer", "basis"], columns="step", values="delta", sort=False)
    wide.columns = [f"Delta step {c}" for c in wide.columns]
    return wide.reset_index()


def plot(df, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(df["config"]))
    cols = 4
    rows = (len(configs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False, sharey=True)
    bases = [b for b in dict.fromkeys(df["basis"]) if b != "-"]
    styles = {**dict(zip(bases, itertools.cycle(["-", "--", "-.", (0, (5, 1)), (0, (1, 1, 3, 1))]))), "-": ":"}
    for ax, name in zip(axes.flat, configs):
        sub = df[df.config == name]
        for (layer, basis), g in sub.groupby(["layer", "basis"], sort=False):
            label = f"{layer} basis {basis}" if basis != "-" else layer
            ax.semilogy(g["step"], g["delta"], linestyle=styles[basis], marker="o", label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xticks(sorted(set(sub["step"])))
        ax.set_xlabel("scale step t")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(configs) :]:
        ax.axis("off")
    axes[0, 0].set_ylabel("Delta (relative squared error)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle("Scale equivariance error vs scale step (smooth random fields)")
    fig.subplots_adjust(hspace=0.4)
    save_figure(fig, path)
    plt.close(fig)


def main(args) -> int:
    """The report; every steerable layer on the FFT path where it has one (the numbers do not
    depend on the path, which agree to round-off, ``tests/test_layers.py``; one path is the same
    on every machine, and timing each new layer shape cost more than the report itself)."""

    with dispatch.forcing(REPORT_PATH):
        return _main(args)


def _main(args) -> int:
    t0 = time.perf_counter()
    df, pairs = measure(args)
    table = summary_table(df)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "equivariance.csv", df.to_csv(index=False))
    atomic_write_text(out / "equivariance_pairs.csv", pairs.to_csv(index=False))
    md = [
        "# Scale-equivariance error of SESN layers",
        "",
        f"Generated by `sesn report equivariance --size {args.size} --batch {args.batch} "
        f"--channels {args.channels} --blur {args.blur} --seed {args.seed}` "
        f"(torch {torch.__version__}).",
        "",
        f"Protocol: {PROTOCOL}. Inputs: {args.batch} smooth random fields "
        f"(white noise blurred by {args.blur} px, radial window, zero canvas {args.size}x{args.size}); "
        "T->H: 1 input channel; H->H: 2 input channels with an independent field per scale slice; "
        f"{args.channels} output channels, default (kaiming-uniform) init, float64; "
        f"border crop {max(1, args.size // 8)} px. "
        "'plain conv' = nn.Conv2d of the same kernel size on the same inputs and factors.",
        "",
        dataframe_to_markdown(table),
    ]
    bdf, btable = measure_baselines(args)
    atomic_write_text(out / "equivariance_methods.csv", bdf.to_csv(index=False))
    md += [
        "",
        "## All methods on the same inputs (steps of mnist_ses_scalar_28: factors 1/1.44, 1/2.08, 1/3)",
        "",
        "SESN: joint rescale + scale shift of the T->H output (as above). Baselines map T -> T "
        "(one layer as in their MNIST model: 7x7, 1 -> "
        f"{args.channels} channels, default init), measured with the plain rescale protocol "
        "Delta = ||L Phi(f) - Phi(L f)||^2 / ||L Phi(f)||^2 at each pair factor sigma_i/sigma_(i+t), averaged.",
        "",
        *describe_methods(),
        "",
        dataframe_to_markdown(btable),
    ]
    ddf, dtable, dnote = measure_disco(args)
    atomic_write_text(out / "equivariance_disco.csv", ddf.to_csv(index=False))
    c = DISCO_CONFIG
    md += [
        "",
        f"## Ours vs DISCO's own basis, at DISCO's scales {c['scales']} "
        f"(kernel {c['kernel_size']}, effective size {c['effective_size']})",
        "",
        "Same protocol and inputs as above; DISCO's basis is its published proxy basis combined with Hermite "
        f"functions (sigma_min {c['disco_sigma']}, mult {c['mult']}), read from DISCO's data file (a copy with "
        "its licence in tests/data/disco, not in the wheel; see "
        "docs/optimised-basis.md). At step 3 (factor 1/2, an integer ratio) DISCO's dilated functions "
        "are exact on the grid.",
        "",
        dataframe_to_markdown(dtable),
    ] + (["", dnote] if dnote else [])
    sdf, snote = measure_stacks(args)
    atomic_write_text(out / "equivariance_stacks.csv", sdf.to_csv(index=False))
    md += stacks_markdown(sdf, args, snote)
    atomic_write_text(out / "equivariance.md", "\n".join(md))
    plot(df, out / "equivariance.png")
    print(dataframe_to_markdown(table))
    print(dataframe_to_markdown(btable))
    print(f"wrote {out}/equivariance.md, .csv, _pairs.csv, .png in {time.perf_counter() - t0:.1f} s")
    return 0
