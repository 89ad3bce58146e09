"""An output folder that cannot be written is one line and exit 2 before training (issue #43
item 3): a file given as the folder, a folder under a file, a folder that refuses writes (a
refusal is simulated: the tests run as root, whom a read-only mode does not stop)."""

from __future__ import annotations

import os

import pytest

from sesn.cli import main as cli_main
from sesn.errors import InputError
from sesn.io import check_output_folder

COMMANDS = {
    "train": (["train", "--model", "test_ses_scalar", "--epochs", "1", "--data", "no-such-data", "--output-dir"]),
    "reproduce": ["reproduce", "--profile", "smoke", "--results"],
    "generalization": ["generalization", "--profile", "smoke", "--results"],
}


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
@pytest.mark.parametrize("where", ["a file", "under a file"])
def test_unwritable_output_is_one_line_before_any_work(command, where, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    f = tmp_path / "f.txt"
    f.write_text("x")
    target = f if where == "a file" else f / "run"
    assert cli_main([*COMMANDS[command], str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "is a file" in err[0] and str(f) in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_a_folder_that_refuses_writes_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    import tempfile

    real = tempfile.mkstemp

    def refuse(*a, dir=None, **k):
        if dir is not None and os.path.samefile(dir, folder):
            raise PermissionError(13, "Permission denied", str(folder))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match=r"--output-dir .*ro: cannot write there \(Permission denied\)"):
        check_output_folder(folder, "--output-dir")
    check_output_folder(tmp_path / "new" / "run", "--output-dir")  # a new folder is fine (and made)
    assert (tmp_path / "new" / "run").is_dir()
