"""Resume under the default dispatch is bit-identical (issue #43 item 1): ``auto`` decides by
timing in each process, the paths agree only to round-off, and training amplifies it; so a
run's path choices are kept with its checkpoint, a resume reuses them, and the record names
them.

The timing is made adversarial: every process draws its own random "measured" times, so a
fresh process picks other paths than the one before it (what a busy machine does). An
uninterrupted run, and the same run killed after epochs 1 and 2 and resumed twice by fresh
processes (in-process here: the dispatch memory cleared, another timing seed), must end with
the same weights bit for bit."""

from __future__ import annotations

import json
import random

import pytest
import torch

from sesn.nn import dispatch
from sesn.train import train
from tests.test_train import _args  # noqa: F401  (the shared short-run arguments)


class Killed(Exception):
    pass


def _random_timing(seed):
    rng = random.Random(seed)

    def time_interleaved(fns, device, reps=dispatch.REPS):
        for fn in fns.values():
            fn()  # the candidates still run (their warm-up), as the real timing does
        return {m: rng.random() for m in fns}

    return time_interleaved


def _fresh_process(monkeypatch, seed):
    dispatch.clear()
    monkeypatch.setattr(dispatch, "time_interleaved", _random_timing(seed))


def _run(realization, out, monkeypatch, kill_at=None):
    from sesn.train import faults  # the fit loop's test-only seam

    def kill_point(epoch, batch=None):
        if kill_at is not None and epoch == kill_at and batch is None:  # after the epoch's checkpoint
            raise Killed

    monkeypatch.setattr(faults, "kill_point", kill_point)
    try:
        return train.main(train.get_args_parser().parse_args(_args(realization, out)))
    except Killed:
        return None


@pytest.fixture
def measured_auto(monkeypatch):
    monkeypatch.setenv("SESN_AUTO", "measure")
    monkeypatch.delenv("SESN_COMPUTE_MODE", raising=False)
    monkeypatch.delenv("SESN_DISPATCH_CACHE", raising=False)
    monkeypatch.setattr(dispatch, "MEASURE_MIN_MACS", 0)  # the tiny test model is timed too
    yield
    dispatch.clear()


def test_killed_twice_resume_is_bit_identical_under_measured_dispatch(
    realization, tmp_path, monkeypatch, measured_auto
):
    _fresh_process(monkeypatch, seed=1)
    whole = _run(realization, tmp_path / "whole", monkeypatch)
    assert whole["status"] == "done" and whole["dispatch"], "the record names the path choices"
    _fresh_process(monkeypatch, seed=1)  # the first segment sees the same timings as the whole run
    assert _run(realization, tmp_path / "killed", monkeypatch, kill_at=1) is None
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=False)
    trained = ckpt["dispatch"]  # the training and validation keys (the test set is met at the end)
    assert trained and trained.items() <= whole["dispatch"].items()
    for seed, kill_at in ((2, 2), (3, None)):  # fresh processes whose own timings would pick otherwise
        _fresh_process(monkeypatch, seed=seed)
        _run(realization, tmp_path / "killed", monkeypatch, kill_at=kill_at)
    rec = json.loads((tmp_path / "killed" / "record.json").read_text())
    assert {k: rec["dispatch"][k] for k in trained} == trained  # every resume took the recorded paths
    a = torch.load(tmp_path / "whole" / "best.pt")
    b = torch.load(tmp_path / "killed" / "best.pt")
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run's"


def test_the_timing_seed_alone_changes_the_weights(realization, tmp_path, monkeypatch, measured_auto):
    """The control: without a resume, two timing seeds pick other paths and end with other weights
    (else the test above could not fail)."""
    _fresh_process(monkeypatch, seed=1)
    r1 = _run(realization, tmp_path / "a", monkeypatch)
    _fresh_process(monkeypatch, seed=2)
    r2 = _run(realization, tmp_path / "b", monkeypatch)
    assert r1["dispatch"] != r2["dispatch"]
    a, b = torch.load(tmp_path / "a" / "best.pt"), torch.load(tmp_path / "b" / "best.pt")
    assert not all(torch.equal(a[k], b[k]) for k in a)
