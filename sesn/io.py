"""Atomic file writes: temp file in the same folder, fsync, rename — a reader (or a run
killed at any point) sees the old file or the new one, never half of one."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@contextlib.contextmanager
def exclusive_lock(path: Path, wait: bool = True):
    """An exclusive advisory lock (``fcntl.flock``) on ``path`` while the block runs; yields
    the open lock file. The OS releases it when the holder dies, even by ``kill -9``, so a
    stale lock never blocks anyone. With ``wait=False`` a held lock raises BlockingIOError."""
    import fcntl

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        try:
            yield f
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_output_folder(path: Path, option: str) -> Path:
    """Make sure results can be written under ``path`` before any work: an existing file, a folder
    under a file, or a folder that refuses a write is an :class:`~sesn.errors.InputError` naming
    ``option`` and the path; a missing folder is created."""
    from sesn.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {path} is a file, not a folder")
    for p in path.parents:
        if p.exists() and not p.is_dir():
            raise InputError(f"{option} {path}: is under {p}, which is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{option} {path}: cannot write there ({e.strerror or e})") from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class CorruptFileError(ValueError):
    """A results, record or manifest file that cannot be parsed."""


def read_json(path: Path):
    """Parse a JSON file; a corrupt or truncated file raises :class:`CorruptFileError` naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CorruptFileError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); delete or restore it"
        ) from None


def parse_bytes(text: str | int | float) -> int:
    """``"12GB"``, ``"12 GiB"``, ``"500MB"``, ``"1.5e10"`` -> bytes (GB = 10**9, GiB = 2**30)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKMGT]i?B|B)?\s*", str(text))
    if not m:
        raise ValueError(f"not a memory size: {text!r} (examples: 12GB, 11.5GiB, 800MB)")
    value, unit = float(m.group(1)), (m.group(2) or "B")
    powers = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
              "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}  # fmt: skip
    if unit not in powers:
        raise ValueError(f"unknown unit {unit!r} in {text!r}")
    return int(value * powers[unit])
