"""Training harness: resume after kill -9, DDP on gloo, divergence, sweeps and tables."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sesn import reproduce
from sesn.errors import InputError, MissingInputError
from sesn.models import get_model
from sesn.train import train

REPO = Path(__file__).resolve().parents[1]


def _args(realization, out, *extra):
    return [
        "--model",
        "test_ses_scalar",
        "--data",
        str(realization),
        "--output-dir",
        str(out),
        "--epochs",
        "3",
        "--lr-steps",
        "2",
        "--deterministic",
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]


def test_train_record_and_test_only(realization, tmp_path):
    rec = train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "run")))
    assert rec["status"] == "done" and 0 <= rec["test_acc"] <= 1 and len(rec["history"]) == 3
    on_disk = json.loads((tmp_path / "run" / "record.json").read_text())
    for key in (
        "args",
        "versions",
        "device",
        "seed",
        "data_sha256",
        "params",
        "seconds_per_epoch",
        "val_acc",
        "test_acc",
    ):
        assert key in on_disk
    assert on_disk["data_sha256"] == json.loads((realization / "manifest.json").read_text())["sha256"]
    res = train.main(
        train.get_args_parser().parse_args(
            [
                "--model",
                "test_ses_scalar",
                "--data",
                str(realization),
                "--test-only",
                "--weights",
                str(tmp_path / "run" / "best.pt"),
                "--device",
                "cpu",
            ]
        )
    )
    assert res["test_acc"] == pytest.approx(rec["test_acc"])


RESUME_ARGS = ("--epochs", "4", "--lr-steps", "3")  # the lr drops after epoch 3: after every kill point


def _final_state(out: Path) -> dict:
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
    history = [{k: v for k, v in h.items() if k != "seconds"} for h in ckpt["history"]]
    return {
        "ckpt": ckpt,
        "history": history,
        "record": json.loads((out / "record.json").read_text()),
        "best": torch.load(out / "best.pt", weights_only=True),
    }


def _assert_same_tensors(a, b, what):
    """Recursively compare nested dicts/lists of tensors and numbers for exact equality."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{what}: keys {sorted(a)} vs {sorted(b)}"
        for k in a:
            _assert_same_tensors(a[k], b[k], f"{what}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{what}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tensors(x, y, f"{what}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), (
            f"{what}: tensors differ (max |diff| {float((a.double() - b.double()).abs().max()):.3e})"
        )
    else:
        assert a == b, f"{what}: {a!r} vs {b!r}"


@pytest.fixture(scope="module")
def uninterrupted(realization, tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    train.main(train.get_args_parser().parse_args(_args(realization, out, *RESUME_ARGS)))
    return _final_state(out)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", ["2", "3.2"], ids=["after-checkpoint-2", "mid-epoch-3"])
def test_kill_and_resume_gives_the_uninterrupted_result(realization, tmp_path, uninterrupted, kill_at):
    """SIGKILL right after epoch 2's checkpoint, or at batch 2 of epoch 3; the resumed run
    must end bit-identical to the uninterrupted one: whole per-epoch history (loss, accuracy,
    lr), final model, optimizer and scheduler state, best weights, record."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sesn.train.train", *_args(realization, out, *RESUME_ARGS)]
    env = dict(os.environ, SESN_FAULT_KILL_AT=kill_at)
    killed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert not (out / "record.json").exists() or json.loads((out / "record.json").read_text())["status"] != "done"
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 1  # epoch 2's checkpoint (0-based 1)
    # the stale lock of the killed process is taken over
    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout and "at epoch 3/4" in resumed.stdout
    got = _final_state(out)
    assert got["history"] == uninterrupted["history"]
    for part in ("model", "optimizer", "scheduler", "best_model", "best_val", "epoch"):
        _assert_same_tensors(got["ckpt"][part], uninterrupted["ckpt"][part], part)
    _assert_same_tensors(got["best"], uninterrupted["best"], "best.pt")
    for key in ("test_acc", "val_acc", "test_error", "epochs"):
        assert got["record"][key] == uninterrupted["record"][key], key


def _param_distance(a: dict, b: dict) -> float:
    keys = [k for k in a if a[k].is_floating_point() and "running" not in k]
    num = sum(float((a[k].double() - b[k].double()).pow(2).sum()) for k in keys)
    return (num / sum(float(a[k].double().pow(2).sum()) for k in keys)) ** 0.5


@pytest.mark.slow
def test_ddp_two_processes_vs_one_process_same_global_batch(realization, tmp_path):
    """2-process DDP (gloo, 32 per process) against 1 process with the same global batch of 64.

    The replicas must stay identical (a DDP without gradient averaging fails here). The
    result is *not* the 1-process one, for three documented reasons: DistributedSampler
    interleaves one permutation over the ranks, so a global batch holds other samples than
    the 1-process batch; BatchNorm normalises with per-process statistics of 32 samples;
    dropout draws per-rank masks. Measured here (test_ses_scalar, 1 epoch = 4 Adam steps at
    lr 0.01, seed 0): relative parameter distance 1-process vs DDP 0.25, as large as what
    training moved the weights (0.23): Adam's sign-like steps make any gradient difference
    a full-size step. Epoch loss 2.373 (1 process) vs 2.339 (DDP). So only the replica
    agreement, the schedule and the loss (within 10 %) are asserted.
    """
    env = dict(os.environ, OMP_NUM_THREADS="1")
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sesn.train.train",
        *_args(realization, ddp, "--epochs", "1", "--batch-size", "64"),
    ]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    one = [sys.executable, "-m", "sesn.train.train", *_args(realization, single, "--epochs", "1", "--batch-size", "64")]
    res1 = subprocess.run(one, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert res1.returncode == 0, res1.stderr[-3000:]
    rec, rec1 = (json.loads((d / "record.json").read_text()) for d in (ddp, single))
    assert rec["status"] == "done" and rec["world_size"] == 2 and rec1["world_size"] == 1
    assert rec["replicas_in_sync"] is True and rec["replica_spread"] == 0.0
    a = torch.load(ddp / "checkpoint.pt", weights_only=False)
    b = torch.load(single / "checkpoint.pt", weights_only=False)
    dist_rel = _param_distance(b["model"], a["model"])
    loss, loss1 = a["history"][0]["loss"], b["history"][0]["loss"]
    torch.manual_seed(0)  # train.main seeds with --seed (0) before building the model
    init = get_model("test_ses_scalar").state_dict()
    moved = _param_distance(b["model"], init)
    print(
        f"1-process vs 2-process DDP: relative parameter distance {dist_rel:.4f} "
        f"(training moved the weights {moved:.4f}), epoch loss {loss1:.4f} vs {loss:.4f}"
    )
    assert a["history"][0]["lr"] == b["history"][0]["lr"]
    assert abs(loss - loss1) < 0.1 * loss1, f"DDP epoch loss {loss:.4f} vs 1 process {loss1:.4f}"
    assert dist_rel < 2 * moved, (
        f"DDP ended {dist_rel:.3f} from the 1-process run, more than twice what training moved ({moved:.3f})"
    )


@pytest.mark.slow
def test_ddp_nan_on_one_rank_stops_every_rank(realization, tmp_path):
    """A NaN loss on rank 1 only: all ranks now agree and stop together, and rank 0 records the
    failure. Without the agreement (checked by hand) rank 1 raised alone, torchrun killed rank
    0, and no record was written: the failure was lost."""
    out = tmp_path / "ddp_nan"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sesn.train.train",
        *_args(realization, out, "--epochs", "1", "--batch-size", "64"),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", SESN_FAULT_NAN_RANK="1")
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode != 0
    rec = json.loads((out / "record.json").read_text())
    assert (
        rec["status"] == "failed"
        and "non-finite loss at epoch 1, after 0 samples (on at least one of 2 processes)" in rec["error"]
    )


def test_nan_loss_stops_with_a_recorded_error(realization, tmp_path, monkeypatch):
    from sesn.train import loop

    real = loop.F.cross_entropy
    monkeypatch.setattr(loop.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(train.TrainingDiverged, match="non-finite loss"):
        train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "nan")))
    rec = json.loads((tmp_path / "nan" / "record.json").read_text())
    assert rec["status"] == "failed" and "non-finite" in rec["error"]


def test_concurrent_run_is_refused(realization, tmp_path, lock_holder):
    out = tmp_path / "locked"
    with lock_holder(out) as pid:
        with pytest.raises(train.RunInProgress, match=f"in progress in process {pid} on "):
            train.main(train.get_args_parser().parse_args(_args(realization, out)))
    # the holder was killed (kill -9 semantics): its lock went with it, the run proceeds
    rec = train.main(train.get_args_parser().parse_args(_args(realization, out, "--epochs", "1")))
    assert rec["status"] == "done"


def test_bad_model_and_dataset_names(realization, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train.main(
            train.get_args_parser().parse_args(
                ["--model", "mnist_ses_scalr_28", "--data", str(realization), "--output-dir", str(tmp_path)]
            )
        )
    with pytest.raises(ValueError, match="is for stl10"):
        train.main(
            train.get_args_parser().parse_args(
                ["--model", "test_wrn", "--data", str(realization), "--output-dir", str(tmp_path)]
            )
        )


def test_sweep_plan_shard_and_skip(tmp_path):
    args = reproduce.get_args_parser().parse_args(["--profile", "paper"])
    runs = reproduce.plan(args, reproduce.PROFILES["paper"])
    # CNN and each baseline: 28/56 x {plain, aug} (one model serves two columns); 8 SESN models
    assert len(runs) == (4 + 8 + 7 * 4) * 6
    assert {r.model for r in runs if r.column == "28+"} == {
        "mnist_cnn_28",
        "mnist_ses_scalar_28p",
        "mnist_ses_vector_28p",
        "mnist_xu_28",
        "mnist_kanazawa_28",
        "mnist_dss_scalar_28",
        "mnist_dss_vector_28",
        "mnist_sevf_scalar_28",
        "mnist_sevf_vector_28",
        "mnist_ss_28",
    }
    assert all(r.augment for r in runs if r.column.endswith("+"))
    shards = [reproduce.shard(runs, f"{k}/3") for k in range(3)]
    assert sorted(sum(shards, []), key=lambda r: r.key) == sorted(runs, key=lambda r: r.key)
    both = reproduce.plan(reproduce.get_args_parser().parse_args(["--both-augmentations"]), reproduce.PROFILES["paper"])
    assert len(both) == (4 + 16 + 7 * 4) * 6  # every model with and without augmentation
    with pytest.raises(InputError, match="k/n"):
        reproduce.shard(runs, "3")
    with pytest.raises(InputError, match="0 <= k < n"):
        reproduce.shard(runs, "3/3")


def test_paper_profile_without_data_says_how_to_get_it(tmp_path):
    args = reproduce.get_args_parser().parse_args(
        [
            "--profile",
            "paper",
            "--data-root",
            str(tmp_path),
            "--results",
            str(tmp_path / "res"),
            "--models",
            "mnist_cnn_28",
            "--realizations",
            "0",
            "--columns",
            "28",
        ]
    )
    with pytest.raises(MissingInputError, match="sesn data mnist-scale"):
        reproduce.main(args)


@pytest.mark.skipif(not (REPO / "tests" / "data" / "mnist").is_dir(), reason="real MNIST digits not available")
def test_smoke_profile_end_to_end_and_table(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    res = tmp_path / "res"
    argv = ["--profile", "smoke", "--results", str(res), "--device", "cpu"]
    assert reproduce.main(reproduce.get_args_parser().parse_args(argv)) == 0
    records = list(res.glob("runs/**/record.json"))
    from sesn.allocator import allocator_state

    # the allocator in use is printed once when the first run starts, and recorded in every record
    assert capsys.readouterr().out.count("CPU allocator: ") <= 1
    assert {json.loads(p.read_text())["cpu_allocator"] for p in records} == {allocator_state()}
    assert len(records) == 6  # CNN, SESN scalar, SESN vector, each plain (28) and augmented (28+)
    mtimes = {p: p.stat().st_mtime for p in records}
    assert reproduce.main(reproduce.get_args_parser().parse_args(argv)) == 0  # finished runs are skipped
    assert all(p.stat().st_mtime == t for p, t in mtimes.items())
    table = (res / "table.md").read_text()
    assert "SESN scalar" in table and "28x28 +" in table
    assert (res / "results.yml").read_text().count("\n") == len(records)
    # the table's numbers are the records' test errors
    import pandas as pd
    from matplotlib.image import imread

    recs = [json.loads(p.read_text()) for p in records]
    table_csv = pd.read_csv(res / "table.csv")
    assert len(table_csv) == 6 and (table_csv.n == 1).all()
    for _, r in table_csv.iterrows():
        match = [x["test_error"] for x in recs if x["model"] == r.model and x["augment"] == r.column.endswith("+")]
        assert len(match) == 1 and r.ours_mean == pytest.approx(match[0], rel=1e-12), (r.row, r.column)
        assert f"{r.ours_mean:.2f}" in table
    assert imread(res / "table.png").ndim == 3


def test_command_line_and_config_describe_the_same_run(tmp_path):
    """``sesn train``'s options are exactly TrainConfig's fields, and the defaults resolve alike."""
    import dataclasses

    from sesn.train.config import TrainConfig

    parser = train.get_args_parser()
    dests = {a.dest for a in parser._actions if a.dest != "help"}
    assert dests == {f.name for f in dataclasses.fields(TrainConfig)} - {"select"}
    ns = parser.parse_args(["--model", "test_cnn", "--data", str(tmp_path), "--device", "cpu"])
    direct = TrainConfig(model="test_cnn", data=tmp_path, device="cpu")
    assert train.resolve(ns) == direct.resolved()
    assert direct.resolved().epochs == 60 and direct.resolved().select == "best-val"
    with pytest.raises(ValueError, match="--epochs must be a positive integer"):
        TrainConfig(model="test_cnn", data=tmp_path, epochs=0).resolved()
    # one declaration per field: options parse into the same config, and the settings are the declared ones
    from sesn.train.record import RUN_SETTINGS, SETTINGS

    argv = ["--model", "test_cnn", "--data", str(tmp_path), "--lr", "0.1", "--lr-steps", "3", "5", "--augment",
            "--workers", "2", "--meta", '{"row": "x"}', "--memory-saving", "layers"]  # fmt: skip
    cfg = TrainConfig.from_namespace(parser.parse_args(argv))
    assert (cfg.lr, cfg.lr_steps, cfg.augment, cfg.workers, cfg.meta) == (0.1, [3, 5], True, 2, {"row": "x"})
    declared = {f.name for f in dataclasses.fields(TrainConfig) if f.metadata["setting"]}
    assert set(SETTINGS) == declared | set(RUN_SETTINGS)
    assert {"lr", "seed", "augment", "model"} <= declared and not {"memory_saving", "quiet", "output_dir"} & declared


@pytest.mark.skipif(not (REPO / "tests" / "data" / "mnist").is_dir(), reason="real MNIST digits not available")
def test_fashion_profile_has_own_data_folder_and_table_never_averaged_with_mnist(tmp_path, monkeypatch):
    # the 1,000 test digits stand in for Fashion-MNIST's files: the code path is the same
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SESN_FASHION_MNIST_DIR", str(REPO / "tests" / "data" / "mnist"))
    res = tmp_path / "res"
    base = ["--profile", "smoke", "--results", str(res), "--device", "cpu", "--columns", "28"]
    base += ["--models", "mnist_cnn_28"]
    assert reproduce.main(reproduce.get_args_parser().parse_args(base + ["--dataset", "fashion-mnist-scale"])) == 0
    assert (res / "data" / "fashion-mnist_smoke_seed0").is_dir()
    (fashion,) = res.glob("runs/fashion-mnist-scale/**/record.json")
    rec = json.loads(fashion.read_text())
    assert rec["sweep_settings"]["dataset"] == "fashion-mnist-scale" and rec["dataset"] == "mnist-scale"
    table = (res / "table.md").read_text()
    assert table.startswith("# Fashion-MNIST-scale test error") and "no published numbers" in table
    import pandas as pd

    assert pd.read_csv(res / "table.csv").paper_mean.isna().all()  # the paper has no Fashion numbers
    # the same model, profile and seed on MNIST-scale, into the same folder: two lines, never one mean
    assert reproduce.main(reproduce.get_args_parser().parse_args(base)) == 0
    assert len(list(res.glob("runs/mnist-scale/**/record.json"))) == 1
    summary = pd.read_csv(res / "table.csv")
    assert len(summary) == 2 and (summary.n == 1).all()
    errors = sorted(json.loads(p.read_text())["test_error"] for p in res.glob("runs/**/record.json"))
    assert sorted(summary.ours_mean) == pytest.approx(errors, rel=1e-12)
    # the trained models' own equivariance: one row per run, with its table group; a second call reuses it
    from sesn.report import trained_equivariance as te

    df = te.measure_results(res, images=32)
    assert len(df) == 2 and set(df.group) == set(summary.group) and (df.images == 32).all()
    assert df["T->H Delta (ours)"].isna().all()  # the CNN has no steerable layer
    assert ((df["flips (%)"] >= 0) & (df["flips (%)"] <= 100)).all() and (df["logit Delta"] > 0).all()
    assert (df["logit LEE"] > 0).all() and df["LEE largest layer"].str.contains("%").all()
    monkeypatch.setattr(te, "measure_run", lambda *a, **k: pytest.fail("measured again"))
    again = te.measure_results(res, images=32)
    assert again[list(te.COLUMNS)].equals(df[list(te.COLUMNS)])


def test_fashion_paper_profile_needs_all_70000_images(tmp_path, monkeypatch):
    monkeypatch.setenv("SESN_FASHION_MNIST_DIR", str(REPO / "tests" / "data" / "mnist"))
    argv = ["--profile", "paper", "--dataset", "fashion-mnist-scale", "--data-root", str(tmp_path), "--results",
            str(tmp_path / "res"), "--models", "mnist_cnn_28", "--realizations", "0", "--columns", "28"]  # fmt: skip
    with pytest.raises(InputError, match="needs 70000 images, found 1000"):
        reproduce.main(reproduce.get_args_parser().parse_args(argv))
    assert reproduce.default_results("fashion-mnist-scale", "paper") == Path(
        "results/reproduce/fashion-mnist-scale/paper"
    )
    assert reproduce.default_results("mnist-scale", "quick") == Path("results/reproduce/quick")
