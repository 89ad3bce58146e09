"""Data pipeline tests. Real digits from tests/data/mnist (the first 1,000 of the LeCun test split) are used."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from sesn.data import mnist_scale as ms
from sesn.data.idx import DataFileError, load_idx_pair
from sesn.data.loaders import MNIST_SCALE_MEAN, MNIST_SCALE_STD, MNISTScale, make_loader, mnist_scale_transform
from sesn.data.sources import Digits, load_digits
from sesn.data.stl10 import STL10, Cutout, stl10_test_transform, stl10_train_transform

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO / "tests" / "data" / "mnist"
needs_real = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST digits not found at {SHARED_MNIST}")


def _write_idx(path: Path, array: np.ndarray, magic: int, gz: bool = True):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _fake_digits(n=700, seed=0) -> Digits:
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 8:20, 10:18] = rng.integers(100, 255, size=(n, 12, 8))
    labels = (np.arange(n) % 10).astype(np.uint8)
    return Digits(images, labels, "mnist", "synthetic", ["test"], {})


@pytest.fixture(scope="module")
def real_digits():
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST digits not found at {SHARED_MNIST}")
    return load_digits("mnist", SHARED_MNIST)


# --- IDX reading and bad input -----------------------------------------------------


def test_idx_round_trip_gz_and_raw(tmp_path):
    imgs = np.random.default_rng(0).integers(0, 255, (5, 28, 28)).astype(np.uint8)
    labs = np.array([0, 1, 2, 3, 9], np.uint8)
    for gz in (True, False):
        d = tmp_path / ("gz" if gz else "raw")
        d.mkdir()
        ip = _write_idx(d / "t10k-images-idx3-ubyte", imgs, 2051, gz)
        lp = _write_idx(d / "t10k-labels-idx1-ubyte", labs, 2049, gz)
        a, b, h = load_idx_pair(ip, lp)
        assert np.array_equal(a, imgs) and np.array_equal(b, labs) and len(h) == 2
        digits = load_digits("mnist", d)
        assert digits.splits == ["test"] and len(digits.labels) == 5


def test_idx_errors(tmp_path):
    imgs = np.zeros((4, 28, 28), np.uint8)
    ip = _write_idx(tmp_path / "a-images", imgs, 2051, gz=False)
    lp = _write_idx(tmp_path / "a-labels", np.zeros(3, np.uint8), 2049, gz=False)
    with pytest.raises(DataFileError, match="4 images but .* 3 labels"):
        load_idx_pair(ip, lp)
    bad_magic = _write_idx(tmp_path / "b-images", imgs, 2049, gz=False)
    with pytest.raises(DataFileError, match="wrong magic number 2049, expected 2051"):
        load_idx_pair(bad_magic, lp)
    trunc = tmp_path / "c-images"
    trunc.write_bytes(ip.read_bytes()[:-100])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        load_idx_pair(trunc, lp)
    noisy = np.random.default_rng(0).integers(0, 255, (4, 28, 28)).astype(np.uint8)
    corrupt = tmp_path / "d-images.gz"
    corrupt.write_bytes(gzip.compress(b"\x00\x00\x08\x03" + noisy.tobytes())[:200])
    with pytest.raises(DataFileError, match="corrupt or truncated gzip"):
        load_idx_pair(corrupt, lp)
    with pytest.raises(DataFileError, match="not found"):
        load_idx_pair(tmp_path / "nope", lp)


def test_missing_source_says_where_it_looked_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"looked in: .*empty.*--source-dir.*--download"):
        load_digits("mnist", tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        load_digits("fashion-mnist", tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_digits("kmnist")


# --- generation ------------------------------------------------------------------


def test_split_sizes_and_stratification_exact():
    labels = np.repeat(np.arange(10), [700, 800, 650, 720, 690, 710, 705, 695, 680, 650]).astype(np.uint8)
    sizes = {"train": 1000, "val": 200, "test": 5000}
    parts = ms.stratified_split(labels, sizes, np.random.default_rng(0))
    assert {k: len(v) for k, v in parts.items()} == sizes
    all_idx = np.concatenate(list(parts.values()))
    assert len(np.unique(all_idx)) == len(all_idx)  # disjoint
    freq = np.bincount(labels) / len(labels)
    for name, idx in parts.items():
        counts = np.bincount(labels[idx], minlength=10)
        assert np.all(np.abs(counts - freq * sizes[name]) < 1.0), (name, counts)  # largest-remainder rounding


def test_reduced_splits_and_refusal():
    assert ms.reduced_splits(10_000) == {"train": 1429, "val": 286, "test": 7143}
    assert ms.reduced_splits(70_000) == ms.PAPER_SPLITS
    with pytest.raises(ValueError, match="--reduced"):
        ms.generate(_fake_digits(), 0, "/nonexistent")


def test_generation_deterministic_and_atomic(tmp_path):
    digits = _fake_digits()
    a = ms.generate(digits, 3, tmp_path / "a", reduced=True, progress=False)
    b = ms.generate(digits, 3, tmp_path / "b", reduced=True, progress=False)
    c = ms.generate(digits, 4, tmp_path / "c", reduced=True, progress=False)
    for f in ("train.npz", "val.npz", "test.npz"):
        assert (a / f).read_bytes() == (b / f).read_bytes()
        assert (a / f).read_bytes() != (c / f).read_bytes()
    assert not [p for p in a.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    with pytest.raises(FileExistsError, match="exists"):
        ms.generate(digits, 3, tmp_path / "a", reduced=True, progress=False)
    m = json.loads((a / "manifest.json").read_text())
    assert m["reduced"] is True and m["seed"] == 3 and set(m["sha256"]) == {"train.npz", "val.npz", "test.npz"}


def test_interrupted_generation_leaves_no_realization(tmp_path, monkeypatch):
    digits = _fake_digits()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ms, "rescale_digits", boom)
    with pytest.raises(KeyboardInterrupt):
        ms.generate(digits, 0, tmp_path, reduced=True, progress=False)
    assert not (tmp_path / "mnist_scale" / "mnist_reduced_seed0").exists()
    assert list((tmp_path / "mnist_scale").iterdir()) == []


def test_checksum_mismatch_is_an_error_naming_the_file(tmp_path):
    folder = ms.generate(_fake_digits(), 0, tmp_path, reduced=True, progress=False)
    data = bytearray((folder / "val.npz").read_bytes())
    data[-10] ^= 0xFF
    (folder / "val.npz").write_bytes(bytes(data))
    with pytest.raises(ms.ChecksumError, match=r"val\.npz: sha256 .* does not match"):
        ms.verify(folder)
    with pytest.raises(ms.ChecksumError, match=r"val\.npz"):
        MNISTScale(folder, "val")
    assert (folder / "val.npz").read_bytes() == bytes(data)  # never silently regenerated
    os.remove(folder / "manifest.json")
    with pytest.raises(FileNotFoundError, match="manifest"):
        ms.verify(folder)


@needs_real
def test_real_digits_generation_properties(real_digits, tmp_path):
    folder = ms.generate(real_digits, 0, tmp_path, reduced=True, progress=False)
    train = ms.load_split(folder, "train")
    test = ms.load_split(folder, "test")
    assert len(train["labels"]) == 1429 and len(test["labels"]) == 7143
    scales = np.concatenate([ms.load_split(folder, s)["scales"] for s in ms.SPLIT_NAMES])
    # uniform on [0.3, 1.0]
    assert scales.min() >= 0.3 and scales.max() <= 1.0
    assert stats.kstest(scales, stats.uniform(loc=0.3, scale=0.7).cdf).pvalue > 0.01
    # traceability: the source index points at the original digit with the same label
    assert np.array_equal(real_digits.labels[test["source_index"]], test["labels"])
    # bounding boxes shrink in proportion to the factor
    src = real_digits.images[test["source_index"][:2000]]
    out = test["images"][:2000]

    def height(imgs):
        rows = (imgs > 64).any(axis=2)
        first = rows.argmax(axis=1)
        last = rows.shape[1] - 1 - rows[:, ::-1].argmax(axis=1)
        return np.where(rows.any(axis=1), last - first + 1, 0)

    ratio = height(out) / np.maximum(height(src), 1)
    r = np.corrcoef(ratio, test["scales"][:2000])[0, 1]
    assert r > 0.9, f"bounding-box ratio vs recorded factor correlation {r:.3f}"


@needs_real
def test_tracked_checksums_match(real_digits, tmp_path):
    """The committed manifests in datasets/checksums/ are reproduced bit for bit."""
    tracked = REPO / "datasets" / "checksums" / "mnist_reduced_seed0.json"
    if not tracked.exists():
        pytest.skip("no tracked manifest")
    ref = json.loads(tracked.read_text())
    if (
        ref["versions"]["pillow"] != ms.versions()["pillow"]
        or ref["versions"]["torchvision"] != ms.versions()["torchvision"]
    ):
        pytest.skip(f"tracked with {ref['versions']}, running {ms.versions()}")
    folder = ms.generate(real_digits, 0, tmp_path, reduced=True, progress=False)
    ms.verify(folder, tracked)


# --- loaders ----------------------------------------------------------------------


def test_mnist_scale_loader_normalisation_and_determinism(tmp_path):
    folder = ms.generate(_fake_digits(), 0, tmp_path, reduced=True, progress=False)
    ds = MNISTScale(folder, "test")
    x, y = ds[0]
    raw = torch.from_numpy(ms.load_split(folder, "test")["images"][0]).float() / 255
    torch.testing.assert_close(x[0], (raw - MNIST_SCALE_MEAN) / MNIST_SCALE_STD)
    aug = MNISTScale(folder, "train", augment=True)

    def first_batch(seed):
        torch.manual_seed(seed)
        return next(iter(make_loader(aug, 16, True, seed)))[0]

    assert torch.equal(first_batch(5), first_batch(5))
    assert not torch.equal(first_batch(5), first_batch(6))
    torch.manual_seed(0)
    augmented = torch.stack(
        [
            mnist_scale_transform(True)(torch.from_numpy(ms.load_split(folder, "train")["images"][0]).unsqueeze(0))
            for _ in range(8)
        ]
    )
    assert augmented.std(0).max() > 0  # the "+" augmentation changes the image


# --- STL-10 -----------------------------------------------------------------------


def _write_stl10(root: Path, n_train=6, n_test=4, bad=None):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        hwc = rng.integers(0, 255, (n, 96, 96, 3)).astype(np.uint8)
        # STL-10 layout: per image 3 planes, each stored column-major (x fastest down columns)
        raw = np.transpose(hwc, (0, 3, 2, 1)).tobytes()
        labels = (np.arange(n) % 10 + 1).astype(np.uint8).tobytes()
        if bad == "truncated" and split == "train":
            raw = raw[:-7]
        if bad == "labels" and split == "train":
            labels = labels[:-1]
        (folder / f"{split}_X.bin").write_bytes(raw)
        (folder / f"{split}_y.bin").write_bytes(labels)
        np.save(root / f"{split}_hwc.npy", hwc)
    return root


def test_stl10_reads_the_binary_layout(tmp_path):
    root = _write_stl10(tmp_path)
    ds = STL10(root, "train", verify="layout")
    assert len(ds) == 6
    img, label = ds[2]
    assert np.array_equal(np.asarray(img), np.load(root / "train_hwc.npy")[2])
    assert label == 2  # stored 3, 0-based
    assert len(STL10(root, "test", verify="layout")) == 4


def test_stl10_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not downloaded automatically"):
        STL10(tmp_path / "none", "train", verify="layout")
    with pytest.raises(DataFileError, match="not a whole number"):
        STL10(_write_stl10(tmp_path / "t", bad="truncated"), "train", verify="layout")
    with pytest.raises(DataFileError, match="6 images but .* 5 labels"):
        STL10(_write_stl10(tmp_path / "l", bad="labels"), "train", verify="layout")


def test_stl10_transforms(tmp_path):
    root = _write_stl10(tmp_path)
    torch.manual_seed(0)
    ds = STL10(root, "train", transform=stl10_train_transform(), verify="layout")
    x, _ = ds[0]
    assert x.shape == (3, 96, 96) and x.dtype == torch.float32
    t = STL10(root, "test", transform=stl10_test_transform(), verify="layout")[0][0]
    raw = torch.from_numpy(np.load(root / "test_hwc.npy")[0]).permute(2, 0, 1).float() / 255
    mean = torch.tensor([0.4467, 0.4398, 0.4066]).view(3, 1, 1)
    std = torch.tensor([0.2603, 0.2566, 0.2713]).view(3, 1, 1)
    torch.testing.assert_close(t, (raw - mean) / std)


def test_cutout_hole_may_cross_the_border():
    torch.manual_seed(0)
    sizes = []
    for _ in range(300):
        out = Cutout(32)(torch.ones(3, 96, 96))
        holes = (out[0] == 0).sum().item()
        sizes.append(holes)
        assert holes <= 32 * 32
    assert max(sizes) == 32 * 32 and min(sizes) < 32 * 32  # clipped at the border sometimes


# --- the data command: verify from anywhere, skip finished seeds, clean killed builds -------


def _source(tmp_path, n=300):
    d = tmp_path / "src"
    d.mkdir()
    digits = _fake_digits(n)
    _write_idx(d / "t10k-images-idx3-ubyte", digits.images, 2051)
    _write_idx(d / "t10k-labels-idx1-ubyte", digits.labels, 2049)
    return d


def test_data_command_verify_generate_skip_and_stale_temporaries(tmp_path, monkeypatch, capsys):
    from sesn.cli import main as cli

    src, root = _source(tmp_path), tmp_path / "root"
    gen = [
        "data",
        "mnist-scale",
        "--root",
        str(root),
        "--source-dir",
        str(src),
        "--reduced",
        "--seeds",
        "0",
        "--splits",
        "100",
        "50",
        "150",
    ]
    # a generation killed earlier left its temporary folder (its process is gone)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    ).stdout.strip()
    stale = root / "mnist_scale" / f".mnist_reduced_seed0.tmp-{dead}"
    stale.mkdir(parents=True)
    assert cli(gen) == 0 and not stale.exists()
    capsys.readouterr()
    assert cli(gen + ["--seeds", "0", "1"]) == 0  # seed 0 is skipped after verifying, seed 1 generated
    out = capsys.readouterr().out
    assert "skip " in out and "mnist_reduced_seed0" in out and "wrote " in out and "mnist_reduced_seed1" in out
    # a finished seed made with other splits is refused, not silently kept
    assert cli(gen[:-4] + ["--splits", "120", "50", "130"]) == 2
    assert "made with other splits or source digits" in capsys.readouterr().err
    # --verify does not depend on the current directory; a custom-split realization is not
    # compared with the tracked (other-split) checksums, and says so
    monkeypatch.chdir(tmp_path)
    assert cli(["data", "mnist-scale", "--root", str(root), "--verify", "--seeds", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok  ") == 2 and "not compared with" in out
    # --track writes next to the data (ROOT/checksums), and --verify then compares with it
    assert cli(gen + ["--seeds", "2", "--track"]) == 0
    assert (root / "checksums" / "mnist_reduced_seed2.json").is_file()
    capsys.readouterr()
    assert cli(["data", "mnist-scale", "--root", str(root), "--verify", "--seeds", "2"]) == 0
    assert f"matches {root / 'checksums' / 'mnist_reduced_seed2.json'}" in capsys.readouterr().out
    # an empty or wrong root is an error, not a success
    assert cli(["data", "mnist-scale", "--root", str(tmp_path / "empty"), "--verify"]) == 2
    assert "nothing to verify" in capsys.readouterr().err
    # a corrupted file is named
    npz = root / "mnist_scale" / "mnist_reduced_seed0" / "train.npz"
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    assert cli(["data", "mnist-scale", "--root", str(root), "--verify", "--seeds", "0"]) == 2
    assert "train.npz: sha256" in capsys.readouterr().err


@needs_real
def test_verify_finds_the_tracked_checksums_from_any_directory(real_digits, tmp_path, monkeypatch, capsys):
    from sesn.cli import main as cli

    tracked = REPO / "datasets" / "checksums" / "mnist_reduced_seed0.json"
    ref = json.loads(tracked.read_text())
    # the bytes depend on the resampler (pillow, torchvision), not on Python's patch version
    if any(ref["versions"][k] != ms.versions()[k] for k in ("pillow", "torchvision")):
        pytest.skip(f"tracked with {ref['versions']}, running {ms.versions()}")
    ms.generate(real_digits, 0, tmp_path, reduced=True, progress=False)
    monkeypatch.chdir(tmp_path)
    assert cli(["data", "mnist-scale", "--root", str(tmp_path), "--verify", "--seeds", "0"]) == 0
    assert f"matches {tracked}" in capsys.readouterr().out


def _rehash(folder, name):
    """What a tamperer does: rewrite the manifest's checksum for the changed file."""
    m = json.loads((folder / "manifest.json").read_text())
    m["sha256"][name] = ms.sha256_file(folder / name)
    (folder / "manifest.json").write_text(json.dumps(m))


def test_tampered_data_with_a_rehashed_manifest_is_one_error_naming_the_file(tmp_path):
    """Issue #43 item 6: a truncated npz, or a label out of range, whose manifest was re-hashed,
    is a CorruptFileError naming the file (not BadZipFile / IndexError from deep inside)."""
    from sesn.io import CorruptFileError

    folder = ms.generate(_fake_digits(), 0, tmp_path, reduced=True, progress=False)
    data = (folder / "val.npz").read_bytes()
    (folder / "val.npz").write_bytes(data[: len(data) // 2])
    _rehash(folder, "val.npz")
    with pytest.raises(CorruptFileError, match=r"val\.npz: not a readable npz"):
        ms.load_split(folder, "val")
    arrays = ms.load_split(folder, "test")
    arrays["labels"] = arrays["labels"].copy()
    arrays["labels"][3] = 200
    from sesn.data.npz import save_npz

    save_npz(folder / "test.npz", **arrays)
    _rehash(folder, "test.npz")
    with pytest.raises(CorruptFileError, match=r"test\.npz: labels must be classes 0\.\.9, found 200"):
        ms.load_split(folder, "test")
