"""STIR scale-generalization data (sesn.data.stir, `sesn data stir`). Small builds only:
few instances and sizes. Tests that need the real MNIST test digits skip without them."""

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sesn.data import stir
from sesn.data.cli import stir_main
from sesn.data.idx import DataFileError
from sesn.data.npz import npz_bytes
from sesn.data.sources import Digits, load_digits
from sesn.data.stir_build import stir_name, stir_recipe

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO / "tests" / "data" / "mnist"
needs_real = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST digits not found at {SHARED_MNIST}")

SIZES = (17, 30, 64)
N = 3


@pytest.fixture(scope="module")
def digits():
    if not SHARED_MNIST.is_dir():
        pytest.skip(f"real MNIST digits not found at {SHARED_MNIST}")
    return load_digits("mnist", SHARED_MNIST)


@pytest.fixture(scope="module")
def small(digits):
    return stir.build_mnist(digits, seed=42, instances=N, sizes=SIZES)


@pytest.fixture(scope="module")
def small_file(small, tmp_path_factory):
    path = tmp_path_factory.mktemp("stir") / "mnist_small.npz"
    path.write_bytes(npz_bytes(small))
    return path


def fake_arrays(classes=2, instances=1, colour=False, sizes=stir.ALL_SIZES, title="Emoji"):
    """A tiny STIR-layout set: one bright square per image at its size and offset (0, 0)."""
    S = len(sizes)
    lead = (3, S, classes, instances)
    imgs = np.zeros(lead + (64, 64) + ((3,) if colour else ()), np.uint8)
    for i, s in enumerate(sizes):
        imgs[:, i, :, :, :s, :s] = 200
    lbls = np.broadcast_to(np.arange(classes)[None, None, :, None], lead).astype(np.int64)
    scls = np.broadcast_to(np.array(sizes)[None, :, None, None], lead).astype(np.int64)
    psts = np.zeros(lead + (2,), np.int64)
    metadata = np.array(
        [
            ["title", title],
            ["description", "test"],
            ["author", "x"],
            ["license", "x"],
            ["version", "1"],
            ["date", "2023"],
        ]
    )
    lbldata = np.array([f"class{c}" for c in range(classes)])
    return {"imgs": imgs, "lbls": lbls, "scls": scls, "psts": psts, "metadata": metadata, "lbldata": lbldata}


def write(path, arrays):
    path.write_bytes(npz_bytes(arrays))
    return path


# --- the rebuilt mnist set ---------------------------------------------------------------


@needs_real
def test_layout_and_dtypes(small):
    S, C = len(SIZES), 10
    assert small["imgs"].shape == (3, S, C, N, 64, 64) and small["imgs"].dtype == np.uint8
    for k, tail in (("lbls", ()), ("scls", ()), ("psts", (2,))):
        assert small[k].shape == (3, S, C, N) + tail and np.issubdtype(small[k].dtype, np.integer), k
    assert small["srcs"].shape == (3, C, N)
    # STIR's order: largest size first
    assert list(small["scls"][0, :, 0, 0]) == sorted(SIZES, reverse=True)
    assert (small["lbls"] == np.arange(C)[None, None, :, None]).all()
    meta = dict(small["metadata"])
    assert list(meta) == list(stir.METADATA_KEYS)
    assert "rebuilt" in meta["title"] and "MNIST test digits" in meta["title"] and "seed 42" in meta["title"]
    assert list(small["lbldata"]) == [str(c) for c in range(10)]
    # min-max normalised: every image spans 0..255
    flat = small["imgs"].reshape(-1, 64 * 64)
    assert (flat.min(1) == 0).all() and (flat.max(1) == 255).all()


@needs_real
def test_source_digits_disjoint_and_of_the_right_class(small, digits):
    srcs = small["srcs"]
    train, valid, test = (set(srcs[i].ravel().tolist()) for i in range(3))
    assert len(train) == len(valid) == len(test) == 10 * N
    assert not (train & valid) and not (train & test) and not (valid & test)
    labels = digits.labels[-10_000:]
    assert (labels[srcs] == np.arange(10)[None, :, None]).all()


@needs_real
def test_deterministic_bytes_and_threads(small, digits):
    again = stir.build_mnist(digits, seed=42, instances=N, sizes=SIZES)
    assert npz_bytes(again) == npz_bytes(small)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = stir.build_mnist(digits, seed=42, instances=N, sizes=SIZES)
    finally:
        torch.set_num_threads(threads)
    assert stir.arrays_sha256(one) == stir.arrays_sha256(small)
    other = stir.build_mnist(digits, seed=43, instances=N, sizes=SIZES)
    assert not np.array_equal(other["imgs"], small["imgs"])


@needs_real
def test_sizes_build_independently(small, digits):
    """A size's images do not depend on which other sizes are built; the first k train
    instances are the same for any instance count (same digits, same positions)."""
    only30 = stir.build_mnist(digits, seed=42, instances=N, sizes=[30])
    i30 = list(small["scls"][0, :, 0, 0]).index(30)
    assert np.array_equal(only30["imgs"][:, 0], small["imgs"][:, i30])
    assert np.array_equal(only30["psts"][:, 0], small["psts"][:, i30])
    two = stir.build_mnist(digits, seed=42, instances=2, sizes=SIZES)
    assert np.array_equal(two["imgs"][0], small["imgs"][0, :, :, :2])


@needs_real
def test_positions_inside_canvas_and_box_matches_pixels(small_file):
    ds = stir.load_stir(small_file, partial_sizes=True)
    x, y, size, box = ds.split("test", SIZES)
    assert ((box[:, :2] >= 0) & (box[:, 2:] <= 64)).all()
    assert torch.equal(box[:, 2:] - box[:, :2], torch.stack([size, size], 1))
    for img, s, b in zip(x[:, 0], size.tolist(), box.tolist()):
        r = int(stir.TRUNCATE * stir.BLUR * s / 28 + 0.5) + 1  # blur radius (+1 for bicubic overshoot)
        ys, xs = np.nonzero(img.numpy() > 0)
        assert xs.min() >= b[0] - r and xs.max() < b[2] + r and ys.min() >= b[1] - r and ys.max() < b[3] + r
        ys, xs = np.nonzero(img.numpy() >= 0.5)  # the stroke itself: inside the box, a sizable part of it
        assert xs.min() >= b[0] - 1 and xs.max() <= b[2] and ys.min() >= b[1] - 1 and ys.max() <= b[3]
        assert ys.max() - ys.min() + 1 >= 0.4 * s


# --- the reader --------------------------------------------------------------------------


@needs_real
def test_reader_on_rebuilt_file_and_split(small_file):
    with pytest.raises(DataFileError, match="sizes along axis 1"):
        stir.load_stir(small_file)  # only 3 of the 48 sizes
    ds = stir.load_stir(small_file, partial_sizes=True)
    assert (ds.domain, ds.rebuilt, ds.num_classes, ds.channels) == ("mnist", True, 10, 1)
    assert ds.sha256 == hashlib.sha256(small_file.read_bytes()).hexdigest() and ds.path == small_file
    x, y, size, box = ds.split("train", [64, 17])
    assert x.shape == (2 * 10 * N, 1, 64, 64) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1
    assert y.dtype == size.dtype == box.dtype == torch.int64 and box.shape == (60, 4)
    assert size.tolist() == [64] * 30 + [17] * 30
    assert y.tolist()[:30] == [c for c in range(10) for _ in range(N)]
    x1, y1, size1, _ = ds.split("valid", [30], instances=1)
    assert x1.shape == (10, 1, 64, 64) and y1.tolist() == list(range(10))
    xv, _, _, _ = ds.split("valid", [30])
    assert torch.equal(x1, xv[::N])  # the first instance of each class
    with pytest.raises(ValueError, match="sizes \\[40\\]"):
        ds.split("test", [40])
    with pytest.raises(ValueError, match="instances"):
        ds.split("test", [30], instances=N + 1)
    with pytest.raises(ValueError, match="unknown split"):
        ds.split("training", [30])


def test_reader_accepts_stir_layouts_grey_and_colour(tmp_path):
    grey = stir.load_stir(write(tmp_path / "emoji.npz", fake_arrays(classes=3)))
    assert (grey.domain, grey.rebuilt, grey.channels, grey.num_classes, grey.sizes) == (
        "emoji",
        False,
        1,
        3,
        stir.ALL_SIZES,
    )
    colour = stir.load_stir(write(tmp_path / "trafficsign.npz", fake_arrays(colour=True, title="Traffic Signs")))
    assert (colour.domain, colour.channels) == ("trafficsign", 3)
    x, y, size, box = colour.split("test", stir.SCENARIOS[1][1], instances=1)
    assert x.shape == (32 * 2, 3, 64, 64)
    assert torch.equal(box[0], torch.tensor([0, 0, 33, 33]))
    assert x[0, :, :33, :33].min() == x[0].max() > 0 and x[0, :, 33:, :].max() == 0


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda a: a.pop("psts"), "missing key"),
        (lambda a: a.update(imgs=a["imgs"][:, :, :, :, :, :, None]), "rank 6"),
        (lambda a: a.update(imgs=a["imgs"][:, :, :, 0]), "rank 6"),
        (lambda a: a.update(imgs=a["imgs"].astype(np.float32)), "dtype float32"),
        (
            lambda a: a.update(imgs=a["imgs"][:2], lbls=a["lbls"][:2], scls=a["scls"][:2], psts=a["psts"][:2]),
            "3 \\(train, valid, test\\)",
        ),
        (lambda a: a.update(lbls=a["lbls"][..., :1, :]), "lbls has shape"),
        (lambda a: a.update(scls=a["scls"][:, ::-1].copy()), "expected STIR's 64, 63"),
        (lambda a: a.update(lbls=a["lbls"] + 1), "labels out of range"),
        (lambda a: a.update(psts=a["psts"] + 1), "outside the 64x64"),
        (lambda a: a.update(metadata=a["metadata"][:, 0]), "metadata has shape"),
        (lambda a: a.update(lbldata=a["lbldata"][:1]), "lbldata"),
    ],
)
def test_reader_rejects_wrong_layout(tmp_path, damage, message):
    arrays = fake_arrays()
    damage(arrays)
    path = write(tmp_path / "bad.npz", arrays)
    with pytest.raises(DataFileError, match=message) as e:
        stir.load_stir(path)
    assert str(path) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_reader_rejects_unreadable_files(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        stir.load_stir(tmp_path / "absent.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(DataFileError, match="junk.npz"):
        stir.load_stir(junk)
    good = write(tmp_path / "good.npz", fake_arrays())
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(DataFileError, match="cut.npz"):
        stir.load_stir(cut)
    objects = tmp_path / "objects.npz"
    arrays = fake_arrays()
    arrays["metadata"] = arrays["metadata"].astype(object)
    np.savez(objects, **arrays)
    with pytest.raises(DataFileError, match="allow_pickle"):
        stir.load_stir(objects)


def test_npz_bytes_are_deterministic_and_loadable(tmp_path):
    arrays = fake_arrays(sizes=(20, 18))
    a, b = npz_bytes(arrays), npz_bytes({k: arrays[k] for k in reversed(list(arrays))})
    assert a == b
    path = write(tmp_path / "x.npz", arrays)
    with zipfile.ZipFile(path) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(path) as z:
        assert np.array_equal(z["imgs"], arrays["imgs"])


def test_scenarios():
    assert sorted(stir.SCENARIOS) == [1, 2, 3, 4]
    expect = {
        1: ((17, 32), [(33, 64)]),
        2: ((33, 48), [(17, 32), (49, 64)]),
        3: ((49, 64), [(17, 48)]),
        4: ((17, 64), [(17, 64)]),
    }
    for k, (train, tests) in expect.items():
        tr, te = stir.SCENARIOS[k]
        assert list(tr) == list(range(train[0], train[1] + 1))
        assert list(te) == [s for lo, hi in tests for s in range(lo, hi + 1)]
        if k < 4:
            assert not set(tr) & set(te) and set(tr) | set(te) == set(range(17, 65))


def test_build_rejects_bad_arguments():
    d = Digits(
        np.zeros((30, 28, 28), np.uint8), np.repeat(np.arange(10), 3).astype(np.uint8), "mnist", "fake", ["test"], {}
    )
    with pytest.raises(ValueError, match="class 0 has 3 digits"):
        stir.build_mnist(d, instances=2, sizes=[17])
    with pytest.raises(ValueError, match="subset of 17..64"):
        stir.build_mnist(d, instances=1, sizes=[16])


# --- the command -------------------------------------------------------------------------


@needs_real
def test_cli_builds_reuses_verifies_and_tracks(tmp_path, capsys):
    root = tmp_path / "data"
    args = ["--root", str(root), "--instances", "1", "--source-dir", str(SHARED_MNIST)]
    assert stir_main(args) == 0
    npz = root / "stir" / f"{stir_name(42, 1)}.npz"
    manifest = json.loads(npz.with_suffix(".json").read_text())
    assert manifest["sha256"][npz.name] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert manifest["recipe"]["instances"] == 1 and manifest["recipe"]["seed"] == 42
    ds = stir.load_stir(npz)
    assert ds.rebuilt and ds.instances == 1 and ds.sizes == stir.ALL_SIZES
    mtime = npz.stat().st_mtime_ns
    capsys.readouterr()
    assert stir_main(args + ["--track"]) == 0
    assert "reuse" in capsys.readouterr().out and npz.stat().st_mtime_ns == mtime
    assert (root / "checksums" / f"stir_{npz.stem}.json").exists()
    assert stir_main(args + ["--verify"]) == 0
    assert "matches" in capsys.readouterr().out
    npz.write_bytes(npz.read_bytes()[:-10])  # damaged: both a rebuild-less run and --verify refuse it
    with pytest.raises(ValueError, match="corrupt"):
        stir_main(args)
    with pytest.raises(ValueError, match="does not match"):
        stir_main(args + ["--verify"])


@needs_real
def test_tracked_manifest_matches_the_current_recipe(digits):
    tracked = REPO / "datasets" / "checksums" / "stir_mnist_rebuilt_seed42.json"
    ref = json.loads(tracked.read_text())
    assert ref["recipe"] == stir_recipe(digits, 42, 50)
    assert ref["shape"] == [3, 48, 10, 50, 64, 64] and ref["rebuilt"]
