"""The trained models' own equivariance, on their own test data.

    sesn report trained-equivariance [--results results/reproduce/quick] [--images 2000]
                                     [--factor 0.7071] [--device cpu|cuda]

For every finished run of a ``sesn reproduce`` results folder that still has its weights
(``best.pt``, the best-validation model the test error was measured with), on the first
``--images`` images of the run's own test split (the model's own preprocessing):

* ``logit Delta``: ``||M(L_a x) - M(x)||^2 / ||M(x)||^2`` over the images, the whole model's
  invariance to a rescale by ``a`` (``--factor``, default 2^-1/2, half an octave down); ``L``
  this project's rescale (Keys cubic, antialiased, about the centre: the object stays where
  it was; a corner-anchored rescale would also move it, which no classifier here ignores);
* ``flips (%)``: the share of images whose predicted class changes under that rescale;
* ``rescaled test error (%)``: the test error on the rescaled images (the test error of the
  record is on the images as they are);
* ``T->H Delta (ours)``: the first steerable layer's equivariance error (scale step 1) on
  the same images with the trained weights; empty for a model without one (the CNN);
* ``logit LEE``: the model's infinitesimal scale invariance, the relative Lie derivative
  ``||d/dt M(rho(g_t) x)||^2 / ||M(x)||^2`` at t = 0 of its logits (invariant: no output action;
  :func:`sesn.equivariance.scale_lie_derivative`, float64, the first ``LIE_IMAGES`` images);
  ``LEE largest layer``: the module of the model whose share of it is largest (per-layer
  attribution), with that share.

Unlike the stacks of ``sesn report equivariance`` (random weights, smooth random fields),
these are the weights training chose, on the data they were trained for: they say how much
of a basis' equivariance survives training. Writes ``trained_equivariance.csv`` into the
results folder (one row per run, with the settings group of ``sesn reproduce table``), which
``sesn report frontier`` reads; a run measured before with the same weights, images and
factor is not measured again.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import math
from pathlib import Path

import torch

from sesn.data.loaders import MNISTScale
from sesn.devices import resolve_device
from sesn.equivariance import relative_error, scale_equivariance, scale_lie_derivative
from sesn.errors import MissingInputError
from sesn.io import atomic_write_text, read_json
from sesn.models import get_model
from sesn.nn import SESConv_Z2_H
from sesn.report.reproduce_table import load_records
from sesn.transforms import rescale

FACTOR = 2**-0.5
IMAGES = 2000
LIE_IMAGES = 200
COLUMNS = ("logit Delta", "flips (%)", "rescaled test error (%)", "T->H Delta (ours)", "logit LEE", "LEE largest layer")


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def first_steerable(model: torch.nn.Module):
    """The first layer with a ``scales`` attribute and a T->H signature (``SESConv_Z2_H``)."""

    for m in model.modules():
        if isinstance(m, SESConv_Z2_H):
            return m
    return None


@torch.no_grad()
def measure_run(folder: Path, images: int = IMAGES, factor: float = FACTOR, device: str = "cpu") -> dict:
    """The numbers of :data:`COLUMNS` for the run in ``folder`` (record.json + best.pt)."""

    folder = Path(folder)
    rec = read_json(folder / "record.json")
    weights = folder / "best.pt"
    if not weights.exists():
        raise MissingInputError(f"{weights}: not found (the run's best-validation weights)")
    model = get_model(rec["model"])
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model = model.to(device).eval()
    test = MNISTScale(rec["data"], "test")
    n = min(images, len(test))
    x = torch.stack([test[i][0] for i in range(n)]).to(device)
    y = torch.stack([test[i][1] for i in range(n)]).to(device)
    logits = torch.cat([model(b) for b in x.split(500)])
    moved = torch.cat([model(rescale(b, factor)) for b in x.split(500)])
    out = {
        "logit Delta": relative_error(logits.double(), moved.double()),
        "flips (%)": 100.0 * float((moved.argmax(1) != logits.argmax(1)).double().mean()),
        "rescaled test error (%)": 100.0 * float((moved.argmax(1) != y).double().mean()),
    }
    layer = first_steerable(model)
    if layer is None:
        out["T->H Delta (ours)"] = math.nan
    else:
        # the layer in float64 on the images as the model sees them (a copy: the model keeps its dtype)
        front = x
        for m in model:
            if m is layer:
                break
            front = m(front)
        out["T->H Delta (ours)"] = scale_equivariance(copy.deepcopy(layer).double(), front.double()[:500], 1).delta
    lie = scale_lie_derivative(copy.deepcopy(model).double().eval(), x[:LIE_IMAGES].double(), layers=True)
    out["logit LEE"] = lie.lee
    shares = {k: v for k, v in lie.per_layer.items() if k != "(rest)" and v == v}
    top = max(shares, key=shares.get) if shares else "(rest)"
    out["LEE largest layer"] = f"{top}: {lie.per_layer[top] / lie.lee:.0%}"
    out["images"], out["factor"] = n, factor
    out["weights_sha256"] = _sha256(weights)
    return out


def measure_results(results: Path, images: int = IMAGES, factor: float = FACTOR, device: str = "cpu"):
    """One row per finished run with weights; rows already in ``trained_equivariance.csv``
    with the same weights, images and factor are reused."""
    import pandas as pd
    from tqdm import tqdm

    results = Path(results)
    df = load_records(results)
    if df.empty:
        raise MissingInputError(f"no run records under {results}/runs")
    done = df[(df.status == "done")]
    done = done[[(Path(p) / "best.pt").exists() for p in done.path]]
    csv = results / "trained_equivariance.csv"
    old = pd.read_csv(csv) if csv.exists() else pd.DataFrame()
    rows = []
    for r in tqdm(list(done.itertuples()), desc="trained models", unit="run"):
        sha = _sha256(Path(r.path) / "best.pt")
        hit = pd.DataFrame()
        if not old.empty and all(c in old.columns for c in COLUMNS):  # measured with every column
            hit = old[(old.weights_sha256 == sha) & (old.images == images) & (old.factor == factor)]
        if len(hit):
            m = hit.iloc[0].to_dict()
        else:
            m = measure_run(Path(r.path), images, factor, device)
        rows.append({"model": r.model, "dataset": r.dataset, "column": r.column, "realization": r.realization,
                     "group": r.group, "test_error": r.test_error, "path": str(Path(r.path).relative_to(results)),
                     **{k: m[k] for k in (*COLUMNS, "images", "factor", "weights_sha256")}})  # fmt: skip
    # runs measured before whose weights are gone (e.g. a committed folder without checkpoints) are kept
    new = pd.DataFrame(rows)
    if not old.empty:
        kept = old[~old.path.isin(set(new.path))] if not new.empty else old
        new = pd.concat([kept, new], ignore_index=True)
    if new.empty:
        raise MissingInputError(f"no finished run under {results}/runs has its weights (best.pt)")
    new = new.sort_values(["model", "group", "realization"]).reset_index(drop=True)
    atomic_write_text(csv, new.to_csv(index=False))
    return new


def load(results: Path):
    """``trained_equivariance.csv`` of a results folder, or None."""
    import pandas as pd

    csv = Path(results) / "trained_equivariance.csv"
    return pd.read_csv(csv) if csv.exists() else None


def get_args_parser(add_help=True) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn report trained-equivariance", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter, add_help=add_help,
    )  # fmt: skip
    p.add_argument("--results", type=Path, default=Path("results/reproduce/quick"), help="a reproduce results folder")
    p.add_argument("--images", type=int, default=IMAGES, help="test images per run (the first of the split)")
    p.add_argument("--factor", type=float, default=FACTOR, help="rescale factor a (< 1: shrink)")
    p.add_argument("--device", default="cpu")
    return p


def main(args) -> int:

    resolve_device(args.device)
    if not 0 < args.factor < 1:
        from sesn.errors import InputError

        raise InputError(f"--factor must be in (0, 1) (a shrink), got {args.factor}")
    df = measure_results(args.results, args.images, args.factor, args.device)
    cols = ["model", "realization", "test_error", *COLUMNS]
    print(df[cols].to_string(index=False))
    print(f"wrote {Path(args.results) / 'trained_equivariance.csv'}")
    return 0
