"""Byte-reproducible ``.npz`` files and file checksums (the folders that hold them are written
atomically by their callers: a temporary folder, then one rename)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

_EPOCH = (1980, 1, 1, 0, 0, 0)


def npz_bytes(arrays: dict, compress: bool = True) -> bytes:
    """An npz (loadable with ``np.load``) that is byte-identical for identical arrays: sorted
    names, fixed zip timestamps and permissions, deflate at a fixed level or stored
    (``np.savez_compressed`` stamps the current time, so its bytes change every run)."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method, allowZip64=True) as zf:
        for name in sorted(arrays):
            arr = io.BytesIO()
            np.lib.format.write_array(arr, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = method
            zf.writestr(info, arr.getvalue(), compress_type=method, compresslevel=6 if compress else None)
    return buf.getvalue()


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like ``np.savez`` but byte-identical for identical arrays (uncompressed
    :func:`npz_bytes`); loadable with ``np.load``."""
    Path(path).write_bytes(npz_bytes(arrays, compress=False))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
