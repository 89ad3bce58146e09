"""MNIST-scale (docs/protocols.md): every digit rescaled once about its centre by a factor drawn
uniformly from [0.3, 1.0] (bicubic, zero background, 28x28, uint8), stratified split
10,000 train / 2,000 val / 50,000 test from all 70,000 MNIST digits, one realization
per seed.

Layout of a realization (``<root>/mnist_scale/<name>/``, name e.g. ``mnist_seed0`` or
``mnist_reduced_seed0``): ``train.npz``, ``val.npz``, ``test.npz`` (arrays ``images``
uint8 [N,28,28], ``labels`` uint8, ``scales`` float64, ``source_index`` int64 into the
merged train+test source) and ``manifest.json`` (sha256 of each file, source hashes,
versions, seed, split sizes, ``reduced``). The folder is written under a temporary name
and renamed when complete, so an interrupted generation never looks finished.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np

from sesn import provenance
from sesn.data.npz import save_npz, sha256_file
from sesn.data.sources import Digits
from sesn.io import CorruptFileError, process_alive, read_json

PAPER_SPLITS = {"train": 10_000, "val": 2_000, "test": 50_000}
PAPER_SOURCE_SIZE = 70_000
SCALE_RANGE = (0.3, 1.0)
SPLIT_NAMES = ("train", "val", "test")


class ChecksumError(ValueError):
    """A generated file does not match its recorded checksum."""


def reduced_splits(num_digits: int) -> dict:
    """The paper's split sizes scaled by ``num_digits / 70,000`` (rounded)."""
    f = num_digits / PAPER_SOURCE_SIZE
    return {k: int(round(v * f)) for k, v in PAPER_SPLITS.items()}


def stratified_split(labels: np.ndarray, sizes: dict, rng: np.random.Generator) -> dict:
    """Indices per split; per class, counts proportional to the class frequency with
    largest-remainder rounding so every split has exactly its size."""
    classes = np.unique(labels)
    counts = np.array([(labels == c).sum() for c in classes])
    total = counts.sum()
    if sum(sizes.values()) > total:
        raise ValueError(
            f"split sizes {sizes} need {sum(sizes.values())} digits, only {total} available; use reduced splits"
        )
    per_class = {}
    for name in SPLIT_NAMES:
        exact = sizes[name] * counts / total
        base = np.floor(exact).astype(int)
        rest = sizes[name] - base.sum()
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:rest]] += 1
        per_class[name] = base
    out = {name: [] for name in SPLIT_NAMES}
    for ci, c in enumerate(classes):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        start = 0
        for name in SPLIT_NAMES:
            n = per_class[name][ci]
            out[name].append(idx[start : start + n])
            start += n
    return {name: np.sort(np.concatenate(v)) for name, v in out.items()}


def rescale_digits(images: np.ndarray, scales: np.ndarray, progress: bool = True) -> np.ndarray:
    """Rescale each 28x28 uint8 image about its centre by its factor with torchvision's
    affine on PIL images (bicubic, fill 0; the reference generator's path: torchvision's
    tensor affine has no bicubic mode), returning uint8."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF
    from tqdm import tqdm

    out = np.empty_like(images)
    it = range(len(images))
    if progress:
        it = tqdm(it, desc="rescaling", unit="img", mininterval=0.5)
    for i in it:
        img = Image.fromarray(images[i], mode="L")
        res = TF.affine(
            img,
            angle=0.0,
            translate=[0, 0],
            scale=float(scales[i]),
            shear=[0.0, 0.0],
            interpolation=InterpolationMode.BICUBIC,
            fill=0,
        )
        out[i] = np.asarray(res, dtype=np.uint8)
    return out


def realization_name(dataset: str, seed: int, reduced: bool) -> str:
    return f"{dataset}{'_reduced' if reduced else ''}_seed{seed}"


_TMP = re.compile(r"^\..*\.tmp-(\d+)$")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` folders left by generations whose process is gone
    (killed); a live process's temporary folder is left alone. Returns what was removed."""
    removed = []
    if Path(folder).is_dir():
        for p in Path(folder).iterdir():
            m = _TMP.match(p.name)
            if m and p.is_dir() and not process_alive(int(m.group(1))):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def generate(
    digits: Digits,
    seed: int,
    root: Path,
    splits: dict | None = None,
    reduced: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Generate one realization; returns its folder. ``splits=None`` means the paper's
    splits, or, with ``reduced=True``, the paper's splits scaled to the digits available."""
    n = len(digits.labels)
    if splits is None:
        if n < PAPER_SOURCE_SIZE and not reduced:
            raise ValueError(
                f"only {n} {digits.dataset} digits found in {digits.folder} "
                f"(the protocol needs {PAPER_SOURCE_SIZE}: train+test); "
                "pass reduced=True (--reduced) to use proportionally smaller splits"
            )
        splits = reduced_splits(n) if reduced else dict(PAPER_SPLITS)
    name = realization_name(digits.dataset, seed, reduced)
    final = Path(root) / "mnist_scale" / name
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; verify it with --verify or pass --overwrite to regenerate")
    t0 = time.perf_counter()
    remove_stale_temporaries(final.parent)
    rng = np.random.default_rng(seed)
    parts = stratified_split(digits.labels, splits, rng)
    scales = rng.uniform(*SCALE_RANGE, size=n)
    tmp = final.parent / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    files = {}
    try:
        for split in SPLIT_NAMES:
            idx = parts[split]
            imgs = rescale_digits(digits.images[idx], scales[idx], progress)
            path = tmp / f"{split}.npz"
            save_npz(
                path,
                images=imgs,
                labels=digits.labels[idx].astype(np.uint8),
                scales=scales[idx],
                source_index=idx.astype(np.int64),
            )
            files[path.name] = sha256_file(path)
        manifest = {
            "name": name,
            "dataset": digits.dataset,
            "seed": seed,
            "reduced": bool(reduced),
            "splits": {k: int(v) for k, v in splits.items()},
            "source": {"folder": digits.folder, "num_digits": int(n), "splits": digits.splits, "sha256": digits.hashes},
            "scale_range": list(SCALE_RANGE),
            "protocol": "rescale about the centre, torchvision affine, bicubic, fill 0, 28x28 uint8; stratified split",
            "versions": versions(),
            "sha256": files,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def versions() -> dict:
    """The software versions recorded in a realization's manifest."""
    return provenance.versions("torch", "torchvision", "pillow", "numpy", "python")


def verify(folder: Path, tracked: Path | None = None) -> dict:
    """Recompute the sha256 of every file of a realization and compare with its manifest
    (and with a tracked manifest, if given). Raises :class:`ChecksumError` naming the file."""
    folder = Path(folder)
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise FileNotFoundError(f"{mpath}: no manifest; the realization is incomplete or was not generated by sesn")
    manifest = read_json(mpath)
    for fname, expected in manifest["sha256"].items():
        path = folder / fname
        if not path.exists():
            raise ChecksumError(f"{path}: missing (listed in {mpath})")
        got = sha256_file(path)
        if got != expected:
            raise ChecksumError(
                f"{path}: sha256 {got} does not match the manifest ({expected}); the file is corrupt or was modified"
            )
    if tracked is not None and Path(tracked).exists():
        ref = read_json(Path(tracked))
        for fname, expected in ref["sha256"].items():
            if manifest["sha256"].get(fname) != expected:
                raise ChecksumError(
                    f"{folder / fname}: sha256 differs from the tracked checksum in {tracked} "
                    f"(tracked with {ref.get('versions')}, generated with {manifest.get('versions')})"
                )
    return manifest


def load_split(folder: Path, split: str, check: bool = True) -> dict:
    """Arrays of one split; with ``check`` the file's sha256 is verified against the manifest."""
    folder = Path(folder)
    if split not in SPLIT_NAMES:
        raise ValueError(f"unknown split {split!r}; choose from {SPLIT_NAMES}")
    path = folder / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; generate the realization with `sesn data mnist-scale`")
    if check:
        mpath = folder / "manifest.json"
        if not mpath.exists():
            raise FileNotFoundError(f"{mpath}: no manifest; the realization is incomplete")
        expected = read_json(mpath)["sha256"].get(path.name)
        got = sha256_file(path)
        if got != expected:
            raise ChecksumError(f"{path}: sha256 {got} does not match the manifest ({expected})")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise CorruptFileError(f"{path}: not a readable npz ({type(e).__name__}: {e})") from None
    check_split_arrays(arrays, path)
    return arrays


NUM_CLASSES = 10  # the digits


def check_split_arrays(arrays: dict, path: Path) -> None:
    """A split's arrays as this package writes them: ``images`` uint8 [N, H, W], ``labels`` in
    0..9, one per image (whatever the checksums say: a manifest can be re-hashed)."""
    missing = [k for k in ("images", "labels") if k not in arrays]
    if missing:
        raise CorruptFileError(f"{path}: no array(s) {missing} (has {sorted(arrays)})")
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or images.dtype != np.uint8:
        raise CorruptFileError(f"{path}: images must be uint8 [N, H, W], got {images.dtype} {list(images.shape)}")
    if labels.shape != (len(images),):
        raise CorruptFileError(f"{path}: {len(images)} images but labels of shape {list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        bad = labels.max() if labels.max() >= NUM_CLASSES else labels.min()
        raise CorruptFileError(f"{path}: labels must be classes 0..{NUM_CLASSES - 1}, found {bad}")
