"""The rebuilt STIR mnist set, built once and reused: ``ensure_stir_mnist`` (what ``sesn data
stir`` and ``sesn generalization`` call), its file name and its recipe (what the file is a pure
function of). The recipe itself is :func:`sesn.data.stir.build_mnist`."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from sesn import provenance
from sesn.data import stir
from sesn.data.mnist_scale import ChecksumError
from sesn.data.npz import npz_bytes, sha256_file
from sesn.data.sources import load_digits
from sesn.io import atomic_write_bytes, atomic_write_text, exclusive_lock, read_json


def stir_name(seed: int, instances: int) -> str:
    """File stem of a rebuilt STIR mnist set: ``mnist_rebuilt_seed<k>`` (50 instances, STIR's
    count) or ``mnist_rebuilt_n<N>_seed<k>``."""
    return (
        f"mnist_rebuilt_seed{seed}" if instances == stir.MNIST_INSTANCES else f"mnist_rebuilt_n{instances}_seed{seed}"
    )


def stir_recipe(digits, seed: int, instances: int) -> dict:
    """What the rebuilt file is a pure function of (with the library versions)."""
    _, _, hashes = stir._test_digits(digits)
    return {
        "version": stir.RECIPE_VERSION,
        "seed": int(seed),
        "instances": int(instances),
        "sizes": list(stir.ALL_SIZES),
        "source": {"dataset": "mnist", "split": "test", "sha256": hashes},
    }


def stir_versions() -> dict:
    return provenance.versions("torch", "numpy", "zlib", "python")


def ensure_stir_mnist(
    root: Path, seed: int = 42, instances: int = 50, source_dir=None, download: bool = False, overwrite: bool = False
) -> tuple[Path, dict]:
    """Build the rebuilt STIR mnist set under ``root/stir`` once, or reuse it after checking
    its sha256 against its manifest (a lock: a second process waits, then reuses the file);
    returns ``(npz path, manifest)``. Raises ``ValueError`` for a file made by another recipe
    and :class:`~sesn.data.mnist_scale.ChecksumError` for a corrupt one."""
    if instances < 1:
        raise ValueError(f"--instances must be >= 1, got {instances}")
    name = stir_name(seed, instances)
    folder = Path(root) / "stir"
    npz, mpath = folder / f"{name}.npz", folder / f"{name}.json"
    digits = load_digits("mnist", source_dir, download, root)
    recipe = stir_recipe(digits, seed, instances)
    with exclusive_lock(folder / f".{name}.lock"):  # a second process waits, then reuses the file
        if npz.exists() and mpath.exists() and not overwrite:
            own = read_json(mpath)
            if own.get("recipe") != recipe:
                raise ValueError(
                    f"{npz} exists but was made by another recipe ({own.get('recipe')}; asked: {recipe}); "
                    "pass --overwrite to rebuild it, or use another --root"
                )
            got = sha256_file(npz)
            if got != own["sha256"].get(npz.name):
                raise ChecksumError(
                    f"{npz}: sha256 {got} does not match its manifest {mpath}; "
                    "the file is corrupt: pass --overwrite to rebuild it"
                )
            print(f"reuse {npz}: already built with this recipe (sha256 {got[:16]}... checked; --overwrite to rebuild)")
            manifest = own
        else:
            print(
                f"source: {len(digits.labels)} MNIST digits from {digits.folder} ({'+'.join(digits.splits)}); "
                "using the test digits"
            )
            t0 = time.perf_counter()
            arrays = stir.build_mnist(digits, seed=seed, instances=instances, progress=sys.stderr.isatty())
            data = npz_bytes(arrays)
            atomic_write_bytes(npz, data)
            manifest = {
                "name": name,
                "domain": "mnist",
                "rebuilt": True,
                "title": str(arrays["metadata"][0][1]),
                "recipe": recipe,
                "source_folder": str(digits.folder),
                "shape": list(arrays["imgs"].shape),
                "bytes": len(data),
                "sha256": {npz.name: hashlib.sha256(data).hexdigest()},
                "arrays_sha256": stir.arrays_sha256(arrays),
                "versions": stir_versions(),
                "seconds": round(time.perf_counter() - t0, 1),
            }
            atomic_write_text(
                mpath, json.dumps(manifest, indent=2, sort_keys=True) + "\n"
            )  # written last: a file without one is unfinished
            print(f"wrote {npz} ({len(data) / 1e6:.1f} MB, images {manifest['shape']}) in {manifest['seconds']} s")
        print(f"  {npz.name}  sha256 {manifest['sha256'][npz.name]}")
    return npz, manifest
