"""The committed records' settings and settings ids are what today's code computes for the
same runs: a refactor of the fit loop, the profiles or the method registrations that changed
a run's settings would give the committed sweeps other ids, and the next session would train
them again beside the committed ones (or a table would mix settings)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from sesn.generalization import run as gen_run
from sesn.generalization.profiles import PROFILES
from sesn.models.method import method
from sesn.train.config import TrainConfig
from sesn.train.record import run_settings, settings_id

RESULTS = Path(__file__).resolve().parents[1] / "results"
FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _records(pattern: str, every: int) -> list[Path]:
    return sorted(RESULTS.glob(pattern))[::every]


@pytest.mark.parametrize(
    "path",
    _records("frontier_quick/runs/**/record.json", 5) + _records("fashion_mnist_scale/runs/**/record.json", 4),
    ids=lambda p: str(p.relative_to(RESULTS).parent),
)
def test_a_committed_training_record_has_the_settings_id_of_today(path):
    rec = json.loads(path.read_text())
    args = TrainConfig(**{k: v for k, v in rec["args"].items() if k in FIELDS})
    settings = run_settings(args, rec["data_sha256"], rec["world_size"])
    assert {**settings, "code_version": rec["settings"]["code_version"]} == rec["settings"]
    assert settings_id(rec["settings"]) == rec["settings_id"]


@pytest.mark.parametrize(
    "path",
    _records("generalization/cpu/runs/**/record.json", 24) + _records("generalization/reduced/runs/**/record.json", 3),
    ids=lambda p: str(p.relative_to(RESULTS).parent),
)
def test_a_committed_generalization_record_has_the_settings_and_label_of_today(path):
    rec = json.loads(path.read_text())
    s = rec["settings"]
    r = gen_run.Run(rec["model"], rec["scenario"], rec["seed"], rec["lr"])
    data = SimpleNamespace(sha256=s["data_sha256"], domain=s["data_domain"], rebuilt=s["data_rebuilt"])
    settings = gen_run.run_settings(r, PROFILES[rec["profile"]], data, torch.device(s["device_type"]))
    assert {**settings, "code_version": s["code_version"]} == s
    assert settings_id(s) == rec["settings_id"]
    assert method(rec["model"]).label == rec["method"]  # the registration names it as the record does
    assert rec["model"] in PROFILES[rec["profile"]].models  # the profile still selects it (by tag)
