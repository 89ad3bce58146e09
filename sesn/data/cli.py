"""``sesn data mnist-scale``, ``sesn data stl10`` and ``sesn data stir``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from sesn.data import mnist_scale as ms
from sesn.data import stir
from sesn.data.mnist_scale import ChecksumError
from sesn.data.npz import sha256_file
from sesn.data.sources import load_digits
from sesn.data.stir_build import ensure_stir_mnist, stir_name
from sesn.data.stl10 import STL10
from sesn.io import atomic_write_text, read_json

# The checksums tracked in the repository; found from the package, not the current directory.
REPO_CHECKSUMS = Path(__file__).resolve().parents[2] / "datasets" / "checksums"


def checksum_dir(root: Path) -> Path:
    """Where tracked manifests live: ``ROOT/checksums`` if it exists (a data root laid out as
    this repository's ``datasets/``), else the repository's ``datasets/checksums``."""
    own = Path(root) / "checksums"
    return own if own.is_dir() else REPO_CHECKSUMS


def comparable(manifest: dict, tracked: dict) -> bool:
    """A tracked manifest applies only to the same recipe: same splits and source digits."""
    return manifest.get("splits") == tracked.get("splits") and manifest.get("source", {}).get("sha256") == tracked.get(
        "source", {}
    ).get("sha256")


def mnist_scale_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn data mnist-scale",
        description=(
            "Generate MNIST-scale realizations (docs/protocols.md): all digits (train+test), stratified "
            "10,000/2,000/50,000 split, each image rescaled once by a factor uniform in [0.3, 1.0] "
            "(bicubic, zero background, 28x28, uint8). One folder per seed under ROOT/mnist_scale/, "
            "with a sha256 manifest. Nothing is downloaded unless --download is given."
        ),
    )
    p.add_argument("--root", type=Path, default=Path("datasets"), help="data root (default: datasets)")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist", help="source digits")
    p.add_argument("--source-dir", type=Path, default=None, help="folder with the IDX files (.gz or raw)")
    p.add_argument("--download", action="store_true", help="download the source with torchvision first")
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(6)), help="realizations (default 0-5)")
    p.add_argument(
        "--reduced", action="store_true", help="allow fewer digits than 70,000: proportionally smaller splits"
    )
    p.add_argument(
        "--splits", type=int, nargs=3, metavar=("TRAIN", "VAL", "TEST"), default=None, help="explicit split sizes"
    )
    p.add_argument("--overwrite", action="store_true", help="regenerate existing realizations")
    p.add_argument(
        "--verify", action="store_true", help="only recompute and check the checksums of existing realizations"
    )
    p.add_argument(
        "--track",
        action="store_true",
        help="copy the manifests to ROOT/checksums/ (datasets/checksums/ with the default root: to commit them)",
    )
    return p


def mnist_scale_main(argv) -> int:
    args = mnist_scale_parser().parse_args(argv)
    if args.verify:
        return verify_main(args)
    digits = load_digits(args.dataset, args.source_dir, args.download, args.root)
    print(f"source: {len(digits.labels)} {args.dataset} digits from {digits.folder} ({'+'.join(digits.splits)})")
    splits = dict(zip(ms.SPLIT_NAMES, args.splits)) if args.splits else None
    if len(digits.labels) < ms.PAPER_SOURCE_SIZE:
        if not args.reduced:
            print(
                f"error: the protocol needs {ms.PAPER_SOURCE_SIZE} digits (train+test), found {len(digits.labels)}. "
                "Pass --reduced to use proportionally smaller splits, or provide the full data set.",
                file=sys.stderr,
            )
            return 2
        sizes = splits or ms.reduced_splits(len(digits.labels))
        print(f"REDUCED protocol: splits {sizes} instead of {ms.PAPER_SPLITS} (recorded in the manifest)")
    for seed in args.seeds:
        t0 = time.perf_counter()
        existing = args.root / "mnist_scale" / ms.realization_name(digits.dataset, seed, args.reduced)
        if (existing / "manifest.json").exists() and not args.overwrite:
            made = ms.verify(existing)  # a finished seed is skipped, after checking its files
            wanted = {
                k: int(v)
                for k, v in (
                    splits or (ms.reduced_splits(len(digits.labels)) if args.reduced else ms.PAPER_SPLITS)
                ).items()
            }
            if made.get("splits") != wanted or made.get("source", {}).get("sha256") != digits.hashes:
                raise ValueError(
                    f"{existing} exists but was made with other splits or source digits "
                    f"({made.get('splits')} from {made.get('source', {}).get('folder')}, "
                    f"asked: {wanted} from {digits.folder}); "
                    "pass --overwrite to regenerate it, or use another --root"
                )
            print(
                f"skip {existing}: already generated with these splits and digits "
                "(checksums verified; --overwrite to regenerate)"
            )
            continue
        folder = ms.generate(digits, seed, args.root, splits=splits, reduced=args.reduced, overwrite=True)
        manifest = read_json(folder / "manifest.json")
        print(f"wrote {folder} in {time.perf_counter() - t0:.1f} s")
        for k, v in sorted(manifest["sha256"].items()):
            print(f"  {k}  sha256 {v}")
        if args.track:
            target = Path(args.root) / "checksums"  # next to the data it describes, never into an installed package
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(folder / "manifest.json", target / f"{folder.name}.json")
    return 0


def verify_main(args) -> int:
    """Check every realization of the seeds under ROOT; finding none is an error."""
    tracked_dir = checksum_dir(args.root)
    found = 0
    for seed in args.seeds:
        for reduced in (False, True):
            folder = args.root / "mnist_scale" / ms.realization_name(args.dataset, seed, reduced)
            if not folder.exists():
                continue
            found += 1
            tracked = tracked_dir / f"{folder.name}.json"
            note, reference = f"no tracked checksums in {tracked_dir}", None
            if tracked.exists() and (folder / "manifest.json").exists():
                own = read_json(folder / "manifest.json")
                if comparable(own, read_json(tracked)):
                    note, reference = f"matches {tracked}", tracked
                else:
                    note = f"not compared with {tracked}: made with other splits or source digits ({own.get('splits')})"
            manifest = ms.verify(folder, reference)  # hashes every file once
            print(
                f"ok  {folder}  ({', '.join(f'{k} {v[:12]}' for k, v in sorted(manifest['sha256'].items()))})  {note}"
            )
    if not found:
        print(
            f"error: nothing to verify: no {args.dataset} realization for seeds {args.seeds} "
            f"under {args.root / 'mnist_scale'}",
            file=sys.stderr,
        )
        return 2
    return 0


def stl10_main(argv) -> int:
    p = argparse.ArgumentParser(
        "sesn data stl10", description="Download (only with --download) and check STL-10 with torchvision's reader."
    )
    p.add_argument("--root", type=Path, default=Path("datasets"))
    p.add_argument("--download", action="store_true", help="download STL-10 (2.6 GB) with torchvision")
    args = p.parse_args(argv)

    for split in ("train", "test"):
        ds = STL10(args.root, split=split, download=args.download)
        print(f"STL-10 {split}: {len(ds)} images in {args.root}/{ds.base_folder}")
    return 0


# --- sesn data stir -----------------------------------------------------------------------


def stir_comparable(manifest: dict, tracked: dict) -> bool:
    """A tracked STIR manifest applies only to the same recipe (seed, instances, sizes, source digits)."""
    return manifest.get("recipe") == tracked.get("recipe")


def stir_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        "sesn data stir",
        description=(
            "Rebuild STIR's mnist-domain scale-generalization set offline (docs/scale-generalization.md): "
            "per class INSTANCES train, valid and test instances from the real MNIST test digits, 48 sizes "
            "17..64 px in 64x64 images, STIR's recipe. Writes ROOT/stir/mnist_rebuilt_seed<k>.npz (STIR's npz "
            "layout, byte-reproducible) and a manifest with its sha256. An existing file with the same recipe "
            "is reused. STIR's own files (emoji, mnist, trafficsign, aerial) are read with sesn.data.stir.load_stir."
        ),
    )
    p.add_argument("--root", type=Path, default=Path("datasets"), help="data root (default: datasets)")
    p.add_argument("--seed", type=int, default=42, help="seed of the digit choice and positions (default 42, STIR's)")
    p.add_argument("--instances", type=int, default=50, help="instances per class, size and split (default 50, STIR's)")
    p.add_argument(
        "--source-dir",
        type=Path,
        default=None,
        help="folder with the MNIST IDX files (.gz or raw); the test digits are used",
    )
    p.add_argument("--download", action="store_true", help="download MNIST with torchvision first")
    p.add_argument("--overwrite", action="store_true", help="rebuild even if a file with this name exists")
    p.add_argument(
        "--verify",
        action="store_true",
        help="only re-hash the existing file and compare with its manifest and the tracked one",
    )
    p.add_argument(
        "--track",
        action="store_true",
        help="copy the manifest to ROOT/checksums/stir_<name>.json "
        "(datasets/checksums/ with the default root: to commit it)",
    )
    return p


def stir_main(argv) -> int:

    args = stir_parser().parse_args(argv)
    if args.instances < 1:
        raise ValueError(f"--instances must be >= 1, got {args.instances}")
    name = stir_name(args.seed, args.instances)
    folder = Path(args.root) / "stir"
    if args.verify:
        return stir_verify(args, name, folder / f"{name}.npz", folder / f"{name}.json")
    _, manifest = ensure_stir_mnist(args.root, args.seed, args.instances, args.source_dir, args.download,
                                    args.overwrite)  # fmt: skip
    if args.track:
        target = Path(args.root) / "checksums"
        target.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target / f"stir_{name}.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        print(f"tracked: {target / f'stir_{name}.json'}")
    return 0


def stir_verify(args, name: str, npz: Path, mpath: Path) -> int:
    """Re-hash the file; compare with its own manifest and, for the same recipe, the tracked one.
    A file whose bytes differ from the tracked sha256 but whose arrays match (another zlib)
    passes with a note."""

    if not npz.exists():
        print(
            f"error: nothing to verify: {npz} not found "
            f"(build it with `sesn data stir --seed {args.seed} --instances {args.instances}`)",
            file=sys.stderr,
        )
        return 2
    if not mpath.exists():
        raise FileNotFoundError(f"{mpath}: no manifest; the build was interrupted: rebuild with --overwrite")
    own = read_json(mpath)
    got = sha256_file(npz)
    if got != own["sha256"].get(npz.name):
        raise ChecksumError(
            f"{npz}: sha256 {got} does not match its manifest {mpath}; the file is corrupt or was modified"
        )
    ds = stir.load_stir(npz)  # layout check
    tracked = checksum_dir(args.root) / f"stir_{name}.json"
    note = f"no tracked checksums at {tracked}"
    if tracked.exists():
        ref = read_json(tracked)
        if not stir_comparable(own, ref):
            note = f"not compared with {tracked}: made by another recipe or from other source digits"
        elif ref["sha256"].get(npz.name) == got:
            note = f"matches {tracked}"
        else:
            arrays = {k: v for k, v in np.load(npz, allow_pickle=False).items()}
            if stir.arrays_sha256(arrays) == ref.get("arrays_sha256"):
                note = (
                    f"arrays match {tracked}; the zip bytes differ "
                    f"(zlib {stir.zlib_version()} here, {ref.get('versions', {}).get('zlib')} tracked)"
                )
            else:
                raise ChecksumError(
                    f"{npz}: contents differ from the tracked checksums in {tracked} "
                    f"(tracked with {ref.get('versions')}, built with {own.get('versions')})"
                )
    print(
        f"ok  {npz}  sha256 {got[:16]}  {ds.domain}{' (rebuilt)' if ds.rebuilt else ''}, "
        f"{ds.num_classes} classes, {len(ds.sizes)} sizes, {ds.instances} instances  {note}"
    )
    return 0
