"""Training harness: resume after kill -9, DDP on gloo, divergence, sweeps and tables."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from sesn import reproduce
from sesn.data import mnist_scale as ms
from sesn.data.sources import Digits
from sesn.train import train

REPO = Path(__file__).resolve().parents[1]


def _digits(n=700) -> Digits:
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):  # a class-dependent bar so a tiny model can learn something
        images[i, 6 + c : 9 + c, 6:22] = 200 + rng.integers(0, 50)
    return Digits(images, labels, "mnist", "synthetic", ["test"], {})


@pytest.fixture(scope="module")
def realization(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return ms.generate(_digits(), 0, root, splits={"train": 256, "val": 64, "test": 128}, reduced=True, progress=False)


def _args(realization, out, *extra):
    return ["--model", "test_ses_scalar", "--data", str(realization), "--output-dir", str(out), "--epochs", "3", "--lr-steps", "2", "--deterministic", "--device", "cpu", "--quiet", *extra]


def test_train_record_and_test_only(realization, tmp_path):
    rec = train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "run")))
    assert rec["status"] == "done" and 0 <= rec["test_acc"] <= 1 and len(rec["history"]) == 3
    on_disk = json.loads((tmp_path / "run" / "record.json").read_text())
    for key in ("args", "versions", "device", "seed", "data_sha256", "params", "seconds_per_epoch", "val_acc", "test_acc"):
        assert key in on_disk
    assert on_disk["data_sha256"] == json.loads((realization / "manifest.json").read_text())["sha256"]
    res = train.main(train.get_args_parser().parse_args(["--model", "test_ses_scalar", "--data", str(realization), "--test-only", "--weights", str(tmp_path / "run" / "best.pt"), "--device", "cpu"]))
    assert res["test_acc"] == pytest.approx(rec["test_acc"])


def test_kill_and_resume_gives_the_uninterrupted_result(realization, tmp_path):
    ref = train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "ref", "--epochs", "4", "--lr-steps", "2")))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sesn.train.train", *_args(realization, out, "--epochs", "4", "--lr-steps", "2")]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = out / "checkpoint.pt"
    deadline = time.time() + 120
    while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "record.json").exists() or json.loads((out / "record.json").read_text())["status"] != "done"
    # the stale lock of the killed process is taken over
    resumed = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    rec = json.loads((out / "record.json").read_text())
    assert rec["test_acc"] == ref["test_acc"] and rec["val_acc"] == ref["val_acc"]
    a = torch.load(out / "best.pt", weights_only=True)
    b = torch.load(tmp_path / "ref" / "best.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_ddp_two_processes_gloo(realization, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "sesn.train.train", *_args(realization, out, "--epochs", "1", "--batch-size", "64")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    rec = json.loads((out / "record.json").read_text())
    assert rec["status"] == "done" and rec["world_size"] == 2


def test_nan_loss_stops_with_a_recorded_error(realization, tmp_path, monkeypatch):
    real = train.F.cross_entropy
    monkeypatch.setattr(train.F, "cross_entropy", lambda *a, **k: real(*a, **k) * float("nan"))
    with pytest.raises(train.TrainingDiverged, match="non-finite loss"):
        train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "nan")))
    rec = json.loads((tmp_path / "nan" / "record.json").read_text())
    assert rec["status"] == "failed" and "non-finite" in rec["error"]


def test_concurrent_run_is_refused(realization, tmp_path):
    out = tmp_path / "locked"
    out.mkdir()
    (out / "run.lock").write_text(str(os.getpid()))  # a live process holds it
    with pytest.raises(RuntimeError, match="in progress"):
        train.main(train.get_args_parser().parse_args(_args(realization, out)))


def test_bad_model_and_dataset_names(realization, tmp_path):
    with pytest.raises(ValueError, match="unknown model"):
        train.main(train.get_args_parser().parse_args(["--model", "mnist_ses_scalr_28", "--data", str(realization), "--output-dir", str(tmp_path)]))
    with pytest.raises(ValueError, match="is for stl10"):
        train.main(train.get_args_parser().parse_args(["--model", "test_wrn", "--data", str(realization), "--output-dir", str(tmp_path)]))


def test_sweep_plan_shard_and_skip(tmp_path):
    args = reproduce.get_args_parser().parse_args(["--profile", "paper"])
    runs = reproduce.plan(args, reproduce.PROFILES["paper"])
    # CNN and each baseline: 28/56 x {plain, aug} (one model serves two columns); 8 SESN models
    assert len(runs) == (4 + 8 + 7 * 4) * 6
    assert {r.model for r in runs if r.column == "28+"} == {"mnist_cnn_28", "mnist_ses_scalar_28p", "mnist_ses_vector_28p", "mnist_xu_28", "mnist_kanazawa_28", "mnist_dss_scalar_28", "mnist_dss_vector_28", "mnist_sevf_scalar_28", "mnist_sevf_vector_28", "mnist_ss_28"}
    assert all(r.augment for r in runs if r.column.endswith("+"))
    shards = [reproduce.shard(runs, f"{k}/3") for k in range(3)]
    assert sorted(sum(shards, []), key=lambda r: r.key) == sorted(runs, key=lambda r: r.key)
    both = reproduce.plan(reproduce.get_args_parser().parse_args(["--both-augmentations"]), reproduce.PROFILES["paper"])
    assert len(both) == (4 + 16 + 7 * 4) * 6  # every model with and without augmentation
    with pytest.raises(SystemExit, match="k/n"):
        reproduce.shard(runs, "3")
    with pytest.raises(SystemExit, match="0 <= k < n"):
        reproduce.shard(runs, "3/3")


def test_paper_profile_without_data_says_how_to_get_it(tmp_path):
    args = reproduce.get_args_parser().parse_args(["--profile", "paper", "--data-root", str(tmp_path), "--results", str(tmp_path / "res"), "--models", "mnist_cnn_28", "--realizations", "0", "--columns", "28"])
    with pytest.raises(SystemExit, match="sesn data mnist-scale"):
        reproduce.main(args)


@pytest.mark.skipif(not (REPO.parent / "shared" / "data" / "mnist").is_dir(), reason="real MNIST digits not available")
def test_smoke_profile_end_to_end_and_table(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    res = tmp_path / "res"
    argv = ["--profile", "smoke", "--results", str(res), "--device", "cpu"]
    assert reproduce.main(reproduce.get_args_parser().parse_args(argv)) == 0
    records = list(res.glob("runs/**/record.json"))
    assert len(records) == 6  # CNN, SESN scalar, SESN vector, each plain (28) and augmented (28+)
    mtimes = {p: p.stat().st_mtime for p in records}
    assert reproduce.main(reproduce.get_args_parser().parse_args(argv)) == 0  # finished runs are skipped
    assert all(p.stat().st_mtime == t for p, t in mtimes.items())
    table = (res / "table.md").read_text()
    assert "SESN scalar" in table and "28x28 +" in table
    assert (res / "table.png").exists() and (res / "results.yml").read_text().count("\n") == len(records)
