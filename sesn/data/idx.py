"""Reader for the IDX files of MNIST / Fashion-MNIST (``.gz`` or raw), with clear errors
for missing, truncated or corrupt files."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


class DataFileError(ValueError):
    """A data file is missing, truncated, corrupt or inconsistent."""


def read_bytes(path: Path) -> bytes:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFileError(f"{path}: file not found") from None
    if path.suffix == ".gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataFileError(f"{path}: corrupt or truncated gzip data ({e})") from None
    return raw


def parse_idx(data: bytes, expected_magic: int, name: str) -> np.ndarray:
    if len(data) < 8:
        raise DataFileError(f"{name}: too short for an IDX header ({len(data)} bytes)")
    magic = int.from_bytes(data[0:4], "big")
    if magic != expected_magic:
        kind = "images" if expected_magic == IMAGES_MAGIC else "labels"
        raise DataFileError(f"{name}: wrong magic number {magic}, expected {expected_magic} for an IDX {kind} file")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataFileError(f"{name}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    payload = len(data) - header
    if payload != expected:
        raise DataFileError(
            f"{name}: header says {dims} ({expected} bytes of data) but the file has {payload}: truncated or corrupt"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_file(folder: Path, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in ``folder`` (either form accepted)."""
    for name in (stem, stem + ".gz"):
        p = Path(folder) / name
        if p.exists():
            return p
    raise DataFileError(f"{Path(folder) / stem}[.gz]: file not found")


def load_idx_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """Images ``[N, 28, 28]`` uint8, labels ``[N]`` uint8 and the sha256 of the uncompressed files."""
    img_bytes, lab_bytes = read_bytes(images_path), read_bytes(labels_path)
    images = parse_idx(img_bytes, IMAGES_MAGIC, str(images_path))
    labels = parse_idx(lab_bytes, LABELS_MAGIC, str(labels_path))
    if images.ndim != 3:
        raise DataFileError(f"{images_path}: expected a 3-D image array, got shape {images.shape}")
    if len(images) != len(labels):
        raise DataFileError(f"{images_path} has {len(images)} images but {labels_path} has {len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise DataFileError(f"{labels_path}: label {int(labels.max())} out of range 0..9")
    hashes = {
        Path(images_path).name: hashlib.sha256(img_bytes).hexdigest(),
        Path(labels_path).name: hashlib.sha256(lab_bytes).hexdigest(),
    }
    return images, labels, hashes
