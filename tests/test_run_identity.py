"""No silently wrong results: runs are identified by their settings, tables never average
runs made with different settings, resume refuses changed settings, sweeps survive kills,
each other and bad arguments."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sesn import reproduce
from sesn.cli import main as cli_main
from sesn.errors import InputError
from sesn.io import CorruptFileError, atomic_write_text
from sesn.report import reproduce_table
from sesn.train import train

REPO = Path(__file__).resolve().parents[1]
HAVE_MNIST = (REPO / "tests" / "data" / "mnist").is_dir()
needs_mnist = pytest.mark.skipif(not HAVE_MNIST, reason="real MNIST digits (tests/data/mnist) not available")


def _args(realization, out, *extra):
    return [
        "--model",
        "test_cnn",
        "--data",
        str(realization),
        "--output-dir",
        str(out),
        "--epochs",
        "2",
        "--deterministic",
        "--device",
        "cpu",
        "--quiet",
        *extra,
    ]


def _record(root: Path, name: str, row: str, column: str, error: float, settings: dict | None):
    rec = {"status": "done", "dataset": "mnist-scale", "model": "mnist_cnn_28", "row": row, "column": column,
           "augment": False, "realization": 0, "profile": "quick", "test_error": error, "val_acc": 0.9,
           "epochs": (settings or {}).get("epochs", 1), "seconds_per_epoch": 1.0, "device": "cpu"}  # fmt: skip
    if settings is not None:
        rec["settings"] = settings
    atomic_write_text(root / "runs" / name / "record.json", json.dumps(rec))


def _settings(**kw):
    base = {"model": "mnist_cnn_28", "dataset": "mnist-scale", "data_sha256": {"train.npz": "x"}, "augment": False,
            "epochs": 6, "lr": 0.01, "lr_steps": [3, 5], "lr_gamma": 0.1, "batch_size": 128, "optimizer": "adam",
            "weight_decay": 0.0, "seed": 0, "amp": False, "channels_last": False, "deterministic": False,
            "world_size": 1, "code_version": "0.1.0"}  # fmt: skip
    return {**base, **kw}


def test_table_never_averages_runs_with_different_settings(tmp_path):
    """The failure seen: a 1-epoch and a 6-epoch run in one folder were averaged into one
    cell ('49.18 +- 54.75, n=2'). Now each settings group has its own line."""
    _record(tmp_path, "a", "CNN", "28", 10.47, _settings(epochs=1, lr_steps=[]))
    _record(tmp_path, "b", "CNN", "28", 87.89, _settings(epochs=6))
    _record(
        tmp_path,
        "c",
        "CNN",
        "28",
        80.0,
        _settings(epochs=6, seed=1, data_sha256={"train.npz": "y"}, code_version="0.1.0+gabc"),
    )
    assert reproduce_table.write_tables(tmp_path) == 0
    table = pd.read_csv(tmp_path / "table.csv")
    assert sorted(table.n) == [1, 2]
    assert sorted(table.ours_mean.round(3)) == [10.47, round((87.89 + 80.0) / 2, 3)]
    assert all(table.row.str.match(r"CNN \[[0-9a-f]{8}\]$"))
    md = (tmp_path / "table.md").read_text()
    assert "not averaged" in md and '"epochs": 1' in md and '"epochs": 6' in md
    assert "different code versions" in md  # the seed-1 run was made by another commit: said so


def test_corrupt_record_is_named(tmp_path):
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "record.json").write_text('{"status": "do')
    with pytest.raises(CorruptFileError, match=r"runs/x/record.json: not valid JSON"):
        reproduce_table.write_tables(tmp_path)


def test_resume_refuses_changed_settings_and_restart_starts_over(realization, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "sesn.train.train", *_args(realization, out)]
    killed = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, env=dict(os.environ, SESN_FAULT_KILL_AT="1"), timeout=300
    )
    assert killed.returncode < 0 and (out / "checkpoint.pt").exists()
    for extra, name in (
        (["--seed", "3"], "seed"),
        (["--lr", "0.5"], "lr"),
        (["--batch-size", "64"], "batch_size"),
        (["--epochs", "3"], "epochs"),
    ):
        with pytest.raises(train.SettingsMismatch, match=rf"{name}: checkpoint .*, now "):
            train.main(train.get_args_parser().parse_args(_args(realization, out, *extra)))
    assert not (out / "record.json").exists()  # nothing was written as if the new settings had been used
    rec = train.main(train.get_args_parser().parse_args(_args(realization, out, "--seed", "3", "--restart")))
    assert rec["status"] == "done" and rec["seed"] == 3 and rec["settings"]["seed"] == 3 and len(rec["history"]) == 2
    on_disk = json.loads((out / "record.json").read_text())
    assert on_disk["settings_id"] == train.settings_id(on_disk["settings"])
    mode = stat.S_IMODE((out / "record.json").stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask  # not mkstemp's 0600


def test_bad_training_arguments(realization, tmp_path):
    for extra, msg in ((["--epochs", "0"], "--epochs must be a positive integer"),
                       (["--epochs", "-1"], "--epochs must be"),
                       (["--batch-size", "0"], "--batch-size must be"),
                       (["--lr", "0"], "--lr must be a positive finite number"),
                       (["--lr", "inf"], "--lr must be a positive finite number"),  # issue #43 item 8
                       (["--lr", "nan"], "--lr must be a positive finite number")):  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            train.main(train.get_args_parser().parse_args(_args(realization, tmp_path / "bad", *extra)))
    assert not (tmp_path / "bad" / "record.json").exists()


def test_last_batch_of_one_is_dropped_not_crashed(realization, tmp_path):
    # 256 training samples at batch 255 leave a last batch of 1, which BatchNorm cannot normalise
    rec = train.main(
        train.get_args_parser().parse_args(_args(realization, tmp_path / "b", "--batch-size", "255", "--epochs", "1"))
    )
    assert rec["status"] == "done" and rec["dropped_last_batch"] is True


def test_bad_sweep_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        reproduce.get_args_parser().parse_args(["--epochs", "0"])
    assert "positive integer" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown model 'mnist_ses_scalr_28'.*mnist_ses_scalar_28"):
        reproduce.main(
            reproduce.get_args_parser().parse_args(
                ["--profile", "quick", "--models", "mnist_ses_scalr_28", "--results", str(tmp_path)]
            )
        )
    with pytest.raises(InputError, match="no place in the mnist-scale table"):  # registered, but no row/columns
        reproduce.main(
            reproduce.get_args_parser().parse_args(
                ["--profile", "smoke", "--models", "test_ses_scalar_56", "--results", str(tmp_path)]
            )
        )
    # the command line says it in one line, exit 2
    assert cli_main(["reproduce", "--profile", "quick", "--models", "nope", "--results", str(tmp_path)]) == 2
    assert "error: unknown model 'nope'" in capsys.readouterr().err


def test_each_profile_has_its_own_results_folder(capsys):
    for profile in ("smoke", "quick"):
        assert reproduce.main(reproduce.get_args_parser().parse_args(["--profile", profile, "--dry-run"])) == 0
        out = capsys.readouterr().out.split()
        assert out and all(line.startswith(f"results/reproduce/{profile}/runs/") for line in out)


def _sweep(results: Path, *extra) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sesn",
        "reproduce",
        "--profile",
        "smoke",
        "--models",
        "test_cnn",
        "--device",
        "cpu",
        "--results",
        str(results),
        *extra,
    ]


@pytest.mark.slow
@needs_mnist
def test_rerun_with_other_epochs_is_a_new_run_not_a_skip(tmp_path):
    res = tmp_path / "res"
    for epochs in ("1", "2", "1"):
        r = subprocess.run(
            _sweep(res, "--epochs", epochs, "--columns", "28"), cwd=REPO, capture_output=True, text=True, timeout=600
        )
        assert r.returncode == 0, r.stderr[-2000:]
    assert "1 already finished" in r.stdout  # the third sweep (epochs 1 again) skipped its finished run
    records = [json.loads(p.read_text()) for p in res.glob("runs/**/record.json")]
    assert sorted(rec["epochs"] for rec in records) == [1, 2]
    table = pd.read_csv(res / "table.csv")
    assert len(table) == 2 and (table.n == 1).all()


@pytest.mark.slow
@needs_mnist
def test_shards_started_together_on_a_fresh_folder_all_succeed(tmp_path):
    res = tmp_path / "res"
    # a generation killed earlier left its temporary folder behind (its process is gone)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = res / "data" / "mnist_smoke_seed0" / "mnist_scale" / f".mnist_reduced_seed0.tmp-{dead}"
    stale.mkdir(parents=True)
    (stale / "train.npz").write_bytes(b"half a file")
    procs = [
        subprocess.Popen(
            _sweep(res, "--shard", f"{k}/2", "--no-table"),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
    assert sum("building the smoke realization" in out for out, _ in outs) == 1  # built once, reused by the other shard
    assert not stale.exists()
    records = [json.loads(p.read_text()) for p in res.glob("runs/**/record.json")]
    assert len(records) == 2 and all(r["status"] == "done" for r in records)
    assert len({json.dumps(r["data_sha256"], sort_keys=True) for r in records}) == 1


@pytest.mark.slow
@needs_mnist
def test_sweep_skips_a_run_held_by_a_live_process_and_reports_it(tmp_path, lock_holder):
    res = tmp_path / "res"
    listing = subprocess.run(_sweep(res, "--dry-run"), cwd=REPO, capture_output=True, text=True, timeout=300)
    held = Path(listing.stdout.split()[0])
    with lock_holder(REPO / held):
        r = subprocess.run(_sweep(res), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 run(s) held by another live process" in r.stdout and "skipping" in r.stderr
    assert len(list(res.glob("runs/**/record.json"))) == 1


def test_cli_user_errors_are_one_line_with_suggestions(tmp_path, capsys):
    assert cli_main(["reprodce"]) == 2
    assert "unknown command 'sesn reprodce'; did you mean: sesn reproduce" in capsys.readouterr().err
    assert cli_main(["report", "equivalence"]) == 2
    assert "did you mean: sesn report equivariance" in capsys.readouterr().err
    assert cli_main(["data"]) == 2  # a group alone lists its commands
    out = capsys.readouterr().out
    assert "sesn data mnist-scale" in out and "sesn data stl10" in out
    (tmp_path / "runs" / "x").mkdir(parents=True)
    (tmp_path / "runs" / "x" / "record.json").write_text("{")
    assert cli_main(["reproduce", "table", "--results", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "record.json: not valid JSON" in err
    with pytest.raises(CorruptFileError):  # --debug shows the traceback instead
        cli_main(["reproduce", "table", "--results", str(tmp_path), "--debug"])


def test_settings_ignore_lr_steps_past_the_end_and_name_workers_and_device(realization):
    a = train.resolve(
        train.get_args_parser().parse_args(_args(realization, "x", "--epochs", "6", "--lr-steps", "40", "20"))
    )
    b = train.resolve(train.get_args_parser().parse_args(_args(realization, "x", "--epochs", "6", "--lr-steps")))
    sa, sb = train.run_settings(a, {"f": "h"}, 1), train.run_settings(b, {"f": "h"}, 1)
    assert sa["lr_steps"] == [] and train.settings_id(sa) == train.settings_id(sb)  # both train identically
    assert sa["workers"] == 0 and sa["device_type"] == "cpu"
    c = train.resolve(train.get_args_parser().parse_args(_args(realization, "x", "--workers", "2")))
    assert train.settings_id(train.run_settings(c, {"f": "h"}, 1)) != train.settings_id(
        train.run_settings(a, {"f": "h"}, 1)
    )


def test_report_commands_name_a_missing_or_wrong_input_in_one_line(tmp_path, capsys):
    """Issue #43 item 7: `sesn report bench FOLDER` and `sesn reproduce table` on a missing or an
    empty results folder are one `error:` line naming it and exit 2."""
    assert cli_main(["report", "bench", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "is a folder" in err and str(tmp_path) in err
    for folder, what in ((tmp_path / "missing", "does not exist"), (tmp_path, "no run records")):
        assert cli_main(["reproduce", "table", "--results", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and what in err and str(folder) in err, err


def test_negative_realization_is_refused_naming_the_option_before_any_data(tmp_path, capsys, monkeypatch):
    """Issue #43 item 8: --realizations -1 built a seed-1 realization before refusing."""
    monkeypatch.chdir(tmp_path)
    assert cli_main(["reproduce", "--profile", "smoke", "--realizations", "-1", "--results", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--realizations" in err and "-1" in err, err
    assert not (tmp_path / "r").exists()


def test_the_missing_digits_hint_names_what_every_command_takes(monkeypatch, tmp_path):
    """Issue #43 item 8: the hint named `sesn data mnist-scale`'s options as if any command took
    them, and not SESN_MNIST_DIR, which works everywhere."""
    from sesn.data import sources

    monkeypatch.setattr(sources, "DEFAULT_DIRS", {**sources.DEFAULT_DIRS, "mnist": [str(tmp_path / "none")]})
    monkeypatch.delenv("SESN_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError) as e:
        sources.load_digits("mnist")
    msg = str(e.value)
    assert "SESN_MNIST_DIR" in msg and "sesn data mnist-scale --source-dir" in msg, msg
