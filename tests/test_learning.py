"""Training learns: the project's training loop (``sesn.train.loop``) takes a tiny SESN from
chance to well above it on real digits in seconds.

The data are the first 1,000 digits of the MNIST test set (``tests/data``, see its README),
800 to train and 200 to test, unscaled 28 x 28. Chance is 10 % (12.6 % for the most common
class of the 200). The bound, 60 % after 4 epochs, sits below what the loop reaches (measured
over seeds: docs/equivariance-tests.md) and far above what a broken loop gets. The
broken loops are planted here too, and each must stay below the bound: the optimizer step
removed, the loss's sign flipped, the labels shuffled against the images.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from sesn.models import get_model
from sesn.train.loop import evaluate, loader, train_epoch

DATA = Path(__file__).parent / "data" / "mnist_t10k_first1000.npz"
EPOCHS = 4
BOUND = 0.60


def digits():
    d = np.load(DATA)
    x = torch.from_numpy(d["images"]).float().div(255).unsqueeze(1)
    y = torch.from_numpy(d["labels"]).long()
    return torch.utils.data.TensorDataset(x[:800], y[:800]), torch.utils.data.TensorDataset(x[800:], y[800:])


def train_and_test(name: str, seed: int) -> float:
    train, test = digits()
    torch.manual_seed(seed)
    model = get_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    args = types.SimpleNamespace(epochs=EPOCHS, channels_last=False, amp=False)
    cpu = torch.device("cpu")
    for epoch in range(EPOCHS):
        order = torch.utils.data.RandomSampler(train, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        train_epoch(model, loader(train, 32, order), opt, cpu, args, epoch, None, False)
    return evaluate(model, loader(test, 200), cpu, args)


SHIPPED = {
    "mnist/t10k-images-idx3-ubyte.gz": "9fe7630f90c0e670227960a294637bc2e78a29d724810e24204eb342c9f033a1",
    "mnist/t10k-labels-idx1-ubyte.gz": "2c54c993d38068b3c3adb720a5cdee07065a066a7b36e7d1df720548d6359eba",
    "disco/size=15_eff_size=7_scales=[1.0, 1.26, 1.59, 2.0].pt": (
        "47fe9272200c01568917d2e1b3e11d76c0640e227c6ccd11dc8e528d7318df9c"
    ),
    "disco/size=5_eff_size=3_scales=[1.0, 1.41, 2.0].pt": (
        "3e329a3f018d480b9f7dc1eebb3437f2ba2a66dbdacc3170019c6cf2e3d6d400"
    ),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_the_shipped_test_data_is_intact(name):
    """The tests that read these files must never skip for want of them (tests/data/README.md)."""
    import hashlib

    path = DATA.parent / name
    assert path.is_file(), f"{path} is missing: it ships with the repository"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SHIPPED[name], f"{path} is not the file described"


def test_the_data_file_is_the_one_described():
    d = np.load(DATA)
    assert d["images"].shape == (1000, 28, 28) and d["images"].dtype == np.uint8
    assert d["labels"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the LeCun test split's first labels


@pytest.mark.parametrize("seed", [0, 1])
def test_a_tiny_sesn_learns_real_digits(seed):
    acc = train_and_test("test_ses_scalar", seed)
    assert acc >= BOUND, f"test accuracy {acc:.3f} after {EPOCHS} epochs (chance 0.10); the loop does not learn"


def _no_step(monkeypatch):
    monkeypatch.setattr(torch.optim.Adam, "step", lambda self, closure=None: None)


def _negated_loss(monkeypatch):
    import sesn.train.loop as loop

    ce = loop.F.cross_entropy
    monkeypatch.setattr(loop, "F", types.SimpleNamespace(cross_entropy=lambda out, y: -ce(out, y)))


def _shuffled_labels(monkeypatch):
    real = digits

    def shuffled():
        train, test = real()
        x, y = train.tensors
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
        return torch.utils.data.TensorDataset(x, y[perm]), test

    monkeypatch.setattr(sys.modules[__name__], "digits", shuffled)


@pytest.mark.parametrize("plant", [_no_step, _negated_loss, _shuffled_labels], ids=lambda f: f.__name__[1:])
def test_a_broken_loop_stays_below_the_bound(plant, monkeypatch):
    """The learning test can fail: each planted break keeps the same run below BOUND."""
    plant(monkeypatch)
    acc = train_and_test("test_ses_scalar", 0)
    assert acc < BOUND, f"planted break {plant.__name__} still reached {acc:.3f}: the learning test could not see it"
