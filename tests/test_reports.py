"""The report commands run end to end and write tables whose numbers are checked."""

import json
import math
import re

import pandas as pd
import pytest
import torch
from matplotlib.image import imread

from sesn.cli import main
from sesn.equivariance import scale_equivariance
from sesn.models.mnist_configs import MNIST_SES_CONFIGS
from sesn.nn import SESConv_Z2_H
from sesn.transforms import smooth_random_field


@pytest.mark.slow
def test_equivariance_report_writes_tables_and_plot(tmp_path):
    rc = main(
        [
            "report",
            "equivariance",
            "--out",
            str(tmp_path),
            "--configs",
            "mnist_ses_vector_28",
            "--size",
            "40",
            "--batch",
            "1",
            "--channels",
            "2",
        ]
    )
    assert rc == 0
    md = (tmp_path / "equivariance.md").read_text()
    assert "mnist_ses_vector_28" in md and "plain conv 7x7" in md and "SESN T->H basis D" in md and "SiCNN" in md
    df = pd.read_csv(tmp_path / "equivariance.csv")
    # one number recomputed independently: T->H basis A, step 1, same seed, size, batch, channels
    cfg = MNIST_SES_CONFIGS["mnist_ses_vector_28"]
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    layer = SESConv_Z2_H(
        1, 2, cfg.kernel_size, cfg.effective_size, list(cfg.scales), padding=cfg.kernel_size // 2, basis_type="A"
    ).double()
    expected = scale_equivariance(layer, smooth_random_field((1, 1, 40, 40), g, blur=1.5), 1).delta
    row = df[(df.layer == "T->H") & (df.basis == "A") & (df.step == 1)]
    assert len(row) == 1 and math.isclose(float(row.delta.iloc[0]), expected, rel_tol=1e-9)
    # every steerable row beats the same-size plain conv of its kind and step on the same input
    for (layer_name, step), group in df[df.layer.str.contains("plain conv 13x13")].groupby(["layer", "step"]):
        kind = layer_name.split(" plain")[0]
        ses = df[(df.layer.str.startswith(kind)) & (~df.layer.str.contains("plain")) & (df.step == step)]
        assert len(ses) >= 2 and (ses.delta < group.delta.iloc[0] / 5).all(), (layer_name, step)
    pairs = pd.read_csv(tmp_path / "equivariance_pairs.csv")
    assert set(pairs.pair[(pairs.layer == "T->H") & (pairs.step == 1)]) == {"0-1", "1-2"}
    assert imread(tmp_path / "equivariance.png").ndim == 3  # a real image, not an empty file
    assert len(pd.read_csv(tmp_path / "equivariance_methods.csv")) > 0
    disco = pd.read_csv(tmp_path / "equivariance_disco.csv")
    assert {"Hermite A", "optimised D"} <= set(disco.basis)
    if "DISCO (its published basis)" in set(disco.basis):  # DISCO's data file present
        d = disco[disco.basis == "DISCO (its published basis)"]
        # integer ratio: exact up to border effects (1e-8 on this small 40 px canvas, 1e-16 at 64 px)
        assert len(d) == 6 and (d[d.step == 3].delta < 1e-6).all() and "Ours vs DISCO" in md
    else:
        assert "DISCO's row is missing" in md


def test_bench_report_from_a_pytest_benchmark_json(tmp_path, capsys):
    def bench(group, name, role, median, flops, variant=None):
        return {"group": group, "name": name, "stats": {"median": median, "min": median, "rounds": 1},
                "extra_info": {"role": role, "variant": variant or name, "pass": "fwd", "batch": 2, "params": 10,
                               "flops": flops, "peak_memory_bytes": 2**20, "device": "cpu (test)", "torch": "x",
                               "case": "layer"}}  # fmt: skip

    data = {
        "benchmarks": [bench("g", "conv", "baseline", 0.01, 1e9), bench("g", "ses", "ses", 0.04, 2e9, "auto")],
        "machine_info": {},
        "datetime": "now",
    }
    path = tmp_path / "out.json"
    path.write_text(json.dumps(data))
    assert main(["report", "bench", str(path), "--out", str(tmp_path / "r"), "--name", "t"]) == 0
    md = (tmp_path / "r" / "t.md").read_text()
    # 2 GFLOP in 40 ms = 50 GFLOP/s, half the baseline's 1 GFLOP in 10 ms
    assert "| g | ses | 2 | 40.0 | 4.00 | 2.00 | 2.00 | 50 | 0.50 |" in md
    # per family: time 4x, FLOPs 2x, floor = 10 ms x 2 = 20 ms, 2x above it
    assert "| g | fp32 | 1 | conv (10.0 ms, 100 GFLOP/s) | 4.00 | 2.00 | 20.0 | 2.0 | 0.50 | ses |" in md
    assert pd.read_csv(tmp_path / "r" / "t-efficiency.csv").above_floor_max.tolist() == [2.0]
    table = pd.read_csv(tmp_path / "r" / "t.csv")
    assert len(table) == 2 and imread(tmp_path / "r" / "t.png").ndim == 3
    assert "CPU memory allocator: not recorded" in md
    # rows measured under different allocators (or machines) never share one table
    data["benchmarks"][1]["extra_info"]["allocator"] = "glibc heap only"
    path.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(["report", "bench", str(path), "--out", str(tmp_path / "r"), "--name", "t"]) == 2
    assert re.search(r"^error: .*different settings.*allocator", capsys.readouterr().err)


def test_cli_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("report equivariance", "report methods", "report bench", "data mnist-scale", "reproduce", "train"):
        assert cmd in out


def test_methods_report_has_ours_beside_disco(tmp_path):
    assert (
        main(
            [
                "report",
                "methods",
                "--out",
                str(tmp_path),
                "--depth",
                "2",
                "--size",
                "40",
                "--batch",
                "1",
                "--channels",
                "2",
            ]
        )
        == 0
    )
    disco = pd.read_csv(tmp_path / "methods_disco.csv")
    assert {"SESN basis A", "SESN basis B", "SESN basis D"} <= set(disco.method) and set(disco.depth) == {1, 2}
    md = (tmp_path / "methods.md").read_text()
    if "DISCO (its published basis)" in set(disco.method):
        d = disco[(disco.method == "DISCO (its published basis)") & (disco.depth == 1)]
        assert (d[d.step == 3].delta < 1e-6).all() and (d[d.step == 1].delta > 1e-5).all()
        assert "Ours vs DISCO" in md
    else:
        assert "DISCO's rows are missing" in md
    depth = pd.read_csv(tmp_path / "methods_depth.csv")
    cnn = depth[(depth.method == "CNN") & (depth.depth == 1) & (depth.step == 1)].delta
    ses = depth[(depth.method == "SESN basis A") & (depth.depth == 1) & (depth.step == 1)].delta
    assert (ses.to_numpy() < cnn.to_numpy() / 5).all()  # on every input kind, as measured in the committed report


def test_frontier_report_marks_the_pareto_front_and_never_merges_settings(tmp_path, capsys):
    from sesn.report.frontier import pareto_front

    assert pareto_front([(1.0, 5.0), (2.0, 3.0), (3.0, 4.0), (0.5, 6.0)]) == [True, True, False, True]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [True, True]  # ties dominate neither
    runs = tmp_path / "quick"
    runs.mkdir()
    cols = ["row", "column", "model", "n", "ours_mean", "ours_std", "group"]
    pd.DataFrame(
        [
            ("SESN scalar", "28", "mnist_ses_scalar_28", 2, 3.1, 0.7, "g1"),
            ("SESN scalar (basis D)", "28", "mnist_disco_scalar_28", 2, 2.9, 0.7, "g2"),
            ("SESN scalar (basis R)", "28", "mnist_sesr_scalar_28", 2, 5.5, 0.7, "g3"),
            ("SESN scalar (basis R)", "28", "mnist_sesr_scalar_28", 1, 2.0, None, "g4"),  # other settings: own row
            ("CNN", "28", "mnist_cnn_28", 2, 2.0, 0.1, "g5"),  # no basis: not a point
            ("SESN scalar", "28", "mnist_ses_scalar_56", 2, 1.0, 0.1, "g6"),  # other scales: not a point
            ("Plug-in", "28", "mnist_not_registered_here", 2, 1.0, 0.1, "g7"),  # a plug-in not loaded: skipped
        ],
        columns=cols,
    ).to_csv(runs / "table.csv", index=False)
    # the trained models' own numbers: averaged per (model, settings group), never across groups
    trained = [("mnist_disco_scalar_28", "g2", 0, 0.1, 10.0, 0.01), ("mnist_disco_scalar_28", "g2", 1, 0.3, 30.0, 0.03),
               ("mnist_sesr_scalar_28", "g4", 0, 9.0, 90.0, 0.9)]  # fmt: skip
    pd.DataFrame(
        trained, columns=["model", "group", "realization", "logit Delta", "flips (%)", "T->H Delta (ours)"]
    ).to_csv(runs / "trained_equivariance.csv", index=False)
    eq = tmp_path / "equivariance_stacks.csv"
    # the rows name their basis kind (the labels are free text) and mark the ablation as a variant
    labels = [("Hermite B (mult 1.5)", "B", "", 1e-2), ("optimised D", "D", "", 1e-3),
              ("optimised R (span_sigma 3.23)", "R", "", 1e-4),
              ("optimised R, span_sigma 1.7 (sigma_0)", "R", "span at sigma_0", 1e-9)]  # fmt: skip
    rows = [("mnist_ses_scalar_28 [1.7, 2.45, 3.54, 5.1]", label, kind, variant, protocol, stack, d)
            for label, kind, variant, d in labels for protocol in ("ours", "independent")
            for stack in ("T->H", "T->ReLU->H", "4 layers, ReLU")]  # fmt: skip
    cols = ["scales", "basis", "basis_kind", "variant", "protocol", "stack", "delta"]
    pd.DataFrame(rows, columns=cols).to_csv(eq, index=False)
    out = str(tmp_path / "f")
    assert main(["report", "frontier", "--training", str(runs), "--equivariance", str(eq), "--out", out]) == 0
    df = pd.read_csv(tmp_path / "f" / "frontier.csv")
    assert list(df.basis) == ["B", "D", "R", "R"] and list(df.settings) == ["g1", "g2", "g3", "g4"]
    # front on (T->ReLU->H Delta, error): B (1e-2, 3.1) is dominated by D (1e-3, 2.9); D by R/g4 (1e-4, 2.0)
    assert list(df["on front"]) == [False, False, False, True]
    assert (df["T->ReLU->H (ours)"] == [1e-2, 1e-3, 1e-4, 1e-4]).all()  # the sigma_0 ablation row is not R
    assert df["trained: logit Delta"].tolist()[1:] == pytest.approx([0.2, float("nan"), 9.0], nan_ok=True)
    assert math.isnan(df["trained: flips (%)"][0]) and df["trained: flips (%)"][1] == pytest.approx(20.0)
    md = (tmp_path / "f" / "frontier.md").read_text()
    assert "| quick | mnist_cnn_28 | 28 | 2.00 ± 0.10 (n=2) |" in md  # the CNN: a reference beside the front
    assert "mnist_not_registered_here" in capsys.readouterr().out
    assert imread(tmp_path / "f" / "frontier.png").ndim == 3
    assert main(["report", "frontier", "--training", str(tmp_path / "none"), "--equivariance", str(eq)]) == 2
    assert "table.csv: not found" in capsys.readouterr().err
