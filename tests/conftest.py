"""Fixtures shared by the unit tests."""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sesn.data import mnist_scale as ms
from sesn.data.sources import Digits

# DISCO's published basis files ship with the tests (tests/data/disco, MIT licence)
_DISCO_COPY = Path(__file__).resolve().parent / "data" / "disco"
os.environ.setdefault("SESN_DISCO_DIR", str(_DISCO_COPY))
# the first 1,000 MNIST test digits ship with the tests (tests/data/README.md): found first
os.environ.setdefault("SESN_MNIST_DIR", str(Path(__file__).resolve().parent / "data" / "mnist"))
# The tests check results, which do not depend on the compute path `auto` picks: the cost
# model picks it without timing every candidate (fast, and the same pick on every machine).
# The tests of the timing itself (test_compute_modes, test_memory) clear this variable.
os.environ.setdefault("SESN_AUTO", "cost-model")


def synthetic_digits(n: int = 700) -> Digits:
    """Class-dependent bars (a tiny model can learn them), as MNIST-like digits."""
    rng = np.random.default_rng(0)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, c in enumerate(labels):
        images[i, 6 + c : 9 + c, 6:22] = 200 + rng.integers(0, 50)
    return Digits(images, labels, "mnist", "synthetic", ["test"], {})


@pytest.fixture(scope="session")
def realization(tmp_path_factory):
    """A small MNIST-scale realization (256/64/128) built from synthetic digits."""
    root = tmp_path_factory.mktemp("data")
    return ms.generate(
        synthetic_digits(), 0, root, splits={"train": 256, "val": 64, "test": 128}, reduced=True, progress=False
    )


@contextlib.contextmanager
def run_lock_held_by_another_process(folder: Path):
    """A real second process holding ``folder``'s run lock (sesn.train.train.RunLock) until
    the block ends; yields its pid."""
    code = (
        "import sys, time\n"
        "from sesn.train.train import RunLock\n"
        f"with RunLock({str(folder)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()
        time.sleep(0.05)


@pytest.fixture
def lock_holder():
    """``with lock_holder(folder) as pid:`` -- another live process holds the run lock."""
    return run_lock_held_by_another_process
