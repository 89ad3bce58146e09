"""``sesn train --compile`` (nn.Module.compile, inductor): the same training as eager to float
round-off, checkpoints with the module's own keys (resume, --test-only), and the record says
it was compiled. The compile takes a few seconds per model on CPU (a C++ compiler is needed)."""

import json
import shutil

import pytest
import torch

from sesn.train import train

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                                reason="torch.compile's CPU backend needs a C++ compiler")]  # fmt: skip


def _run(realization, out, *extra):
    argv = ["--model", "test_ses_scalar", "--data", str(realization), "--output-dir", str(out), "--epochs", "1",
            "--device", "cpu", "--quiet", "--seed", "3", "--optimizer", "sgd", "--lr", "0.01", *extra]  # fmt: skip
    return train.main(train.get_args_parser().parse_args(argv))


def test_compiled_training_equals_eager_to_round_off(realization, tmp_path):
    """SGD, not the protocol's Adam: Adam turns the round-off gradients of parameters whose exact
    gradient is zero (the bias of a batch norm followed by a linear layer and another batch
    norm) into steps of the learning rate's size, in both runs, differently."""
    eager = _run(realization, tmp_path / "eager")
    compiled = _run(realization, tmp_path / "compiled", "--compile")
    assert compiled["status"] == "done" and compiled["compiled"] is True and eager["compiled"] is False
    assert json.loads((tmp_path / "compiled" / "record.json").read_text())["compiled"] is True
    a = torch.load(tmp_path / "eager" / "best.pt", weights_only=False)
    b = torch.load(tmp_path / "compiled" / "best.pt", weights_only=False)
    assert list(a) == list(b)  # the module's own keys (no "_orig_mod." prefix)
    for k in a:
        if a[k].is_floating_point():
            torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)
    assert abs(compiled["test_acc"] - eager["test_acc"]) <= 0.02
