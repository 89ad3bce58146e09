"""A device the machine does not have is one line naming it and exit 2, before any work
(issue #43 item 2), for every command that takes --device."""

from __future__ import annotations

import pytest
import torch

from sesn.cli import main as cli_main
from sesn.devices import resolve_device
from sesn.errors import InputError

BAD = ["foo", "cuda:7"] + ([] if torch.cuda.is_available() else ["cuda"])


@pytest.mark.parametrize("name", BAD)
def test_resolve_device_refuses_what_this_machine_lacks(name):
    with pytest.raises(InputError, match=f"--device {name}"):
        resolve_device(name)


def test_resolve_device_keeps_a_valid_name_and_defaults():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name", BAD)
@pytest.mark.parametrize(
    "command",
    [
        ["train", "--model", "test_ses_scalar", "--epochs", "1", "--data", "no-such-data"],
        ["reproduce", "--profile", "smoke"],
        ["generalization", "--profile", "smoke"],
        ["report", "trained-equivariance"],
    ],
    ids=["train", "reproduce", "generalization", "trained-equivariance"],
)
def test_every_command_refuses_a_missing_device_in_one_line_before_work(command, name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    where = ["--output-dir", str(tmp_path / "out")] if command[0] == "train" else ["--results", str(tmp_path / "r")]
    assert cli_main([*command, *where, "--device", name]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --device ") and name in err[0], err
    assert not any(tmp_path.iterdir()), list(tmp_path.rglob("*"))  # nothing built, nothing written
