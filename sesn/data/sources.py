"""Where MNIST-style digits come from: a folder of IDX files (``.gz`` or raw), or a
torchvision download when the user asks for one. Fashion-MNIST uses the same format
(Debian package ``dataset-fashion-mnist``: ``/usr/share/datasets/fashion-mnist``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from sesn import settings
from sesn.data.idx import DataFileError, find_file, load_idx_pair

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEFAULT_DIRS = {
    "mnist": ["datasets/raw/mnist", "datasets/raw/MNIST/raw", "../shared/data/mnist"],
    "fashion-mnist": [
        "datasets/raw/fashion-mnist",
        "datasets/raw/FashionMNIST/raw",
        "/usr/share/datasets/fashion-mnist",
    ],
}
HOW_TO = {
    "mnist": "set SESN_MNIST_DIR=DIR to a folder with the IDX files (train-/t10k-images-idx3-ubyte[.gz] and "
    "labels; read by every command), or build realizations with `sesn data mnist-scale --source-dir DIR` "
    "(or `--download`, torchvision, into datasets/raw)",
    "fashion-mnist": "apt-get install dataset-fashion-mnist (files in /usr/share/datasets/fashion-mnist), set "
    "SESN_FASHION_MNIST_DIR=DIR, or `sesn data mnist-scale --dataset fashion-mnist --source-dir DIR` "
    "(or `--download`)",
}


@dataclasses.dataclass
class Digits:
    images: np.ndarray  # [N, 28, 28] uint8
    labels: np.ndarray  # [N] uint8
    dataset: str
    folder: str
    splits: list  # which original splits were found, in order (train first)
    hashes: dict  # sha256 of the uncompressed source files


def load_digits(
    dataset: str = "mnist", source_dir: str | Path | None = None, download: bool = False, root: str | Path = "datasets"
) -> Digits:
    """All digits found (train + test merged, train first, original order)."""
    if dataset not in DEFAULT_DIRS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DEFAULT_DIRS)}")
    if download:
        _torchvision_download(dataset, Path(root) / "raw")
    if source_dir:
        candidates = [Path(source_dir)]
    else:
        override = {"mnist": settings.mnist_dir, "fashion-mnist": settings.fashion_mnist_dir}[dataset]()
        first = [override] if override is not None else []
        candidates = first + [Path(d) for d in DEFAULT_DIRS[dataset]]
    looked = []
    for folder in candidates:
        looked.append(str(folder))
        if not folder.is_dir():
            continue
        images, labels, hashes, found = [], [], {}, []
        for split, (img_stem, lab_stem) in SPLIT_FILES.items():
            try:
                img_path = find_file(folder, img_stem)
            except DataFileError:
                continue
            lab_path = find_file(folder, lab_stem)  # images without labels: a clear error
            im, lb, h = load_idx_pair(img_path, lab_path)
            images.append(im)
            labels.append(lb)
            hashes.update(h)
            found.append(split)
        if found:
            return Digits(np.concatenate(images), np.concatenate(labels), dataset, str(folder), found, hashes)
    raise FileNotFoundError(
        f"no {dataset} IDX files found; looked in: {', '.join(looked)}. To provide them: {HOW_TO[dataset]}"
    )


def _torchvision_download(dataset: str, raw_root: Path) -> None:
    import torchvision

    cls = torchvision.datasets.MNIST if dataset == "mnist" else torchvision.datasets.FashionMNIST
    for train in (True, False):
        cls(str(raw_root), train=train, download=True)
