"""STIR's scale-generalization data (Altstidl et al., "Just a matter of scale? Scale
equivariance in CNNs", IJCNN 2023; docs/scale-generalization.md, "Data").

Two things live here:

* :func:`build_mnist` rebuilds an mnist-domain set *offline* by STIR's recipe from real
  MNIST digits (here: the 10,000 MNIST test digits; STIR used training digits for
  train/valid). It is labelled "rebuilt" in its metadata and is never STIR's own Zenodo
  file: the source digits differ, the random positions differ, and the resize is
  torch's bicubic (``F.interpolate(mode="bicubic", antialias=True)`` when shrinking,
  clipped to the digit's range) where STIR used skimage's ``resize(order=3,
  preserve_range=True)``, so pixel values differ slightly even for the same digit.
* :func:`load_stir` reads STIR's own npz files (emoji, mnist, trafficsign, aerial;
  grayscale ``[..., 64, 64]`` or colour ``[..., 64, 64, 3]``) and our rebuilt file, checks
  the layout, and hands out splits as tensors (:meth:`StirSet.split`).

The npz layout (STIR's): ``imgs`` uint8 [3 splits (train, valid, test), 48 sizes (index 0
= size 64 ... index 47 = size 17), C classes, N instances, 64, 64(, 3)]; ``lbls``,
``scls`` (object side in px), ``psts`` (x, y offset of the object's top-left corner, last
axis 2) with the first four dimensions; ``metadata`` (rows of (key, value) strings:
title, description, author, license, version, date); ``lbldata`` (class names). Our
rebuilt file adds ``srcs`` int64 [3, C, N]: the index of each instance's source digit
among the MNIST test digits (the reader ignores keys it does not know).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sesn.data.idx import DataFileError
from sesn.data.npz import sha256_file

CANVAS = 64
MNIST_INSTANCES = 50  # STIR's instances per class, size and split
ALL_SIZES = tuple(range(64, 16, -1))  # STIR's order: index 0 = 64 px ... index 47 = 17 px
SPLITS = ("train", "valid", "test")
SPLIT_ALIASES = {"train": 0, "valid": 1, "val": 1, "test": 2}
REQUIRED_KEYS = ("imgs", "lbls", "scls", "psts", "metadata", "lbldata")
METADATA_KEYS = ("title", "description", "author", "license", "version", "date")

# STIR's scenarios: (train sizes = valid sizes, test sizes).
SCENARIOS = {
    1: (tuple(range(17, 33)), tuple(range(33, 65))),
    2: (tuple(range(33, 49)), tuple(range(17, 33)) + tuple(range(49, 65))),
    3: (tuple(range(49, 65)), tuple(range(17, 49))),
    4: (tuple(range(17, 65)), tuple(range(17, 65))),
}

# Recipe constants (STIR's): blur sigma = BLUR * s / 28, threshold 2/pi * arctan(GAIN * (x - CENTRE)).
BLUR = 7 / 8
GAIN = 0.02
CENTRE = 128.0
TRUNCATE = 4.0  # Gaussian kernel radius in sigmas (skimage/scipy default)
RECIPE_VERSION = "sesn-stir-mnist-rebuilt 1"
RECIPE_DATE = "2026-11-27"  # fixed: the file must be a pure function of the recipe


class StirLayoutError(DataFileError):
    """A STIR npz file whose layout is wrong (missing key, shape, dtype, sizes, labels)."""


# ---------------------------------------------------------------------------------------
# Building the rebuilt mnist set


def _test_digits(digits):
    """The MNIST *test* digits of a :class:`sesn.data.sources.Digits` (which merges
    train + test, train first), with their sha256s."""
    images, labels = np.asarray(digits.images), np.asarray(digits.labels)
    splits = list(getattr(digits, "splits", ["test"]))
    if "test" not in splits:
        raise ValueError(
            f"no MNIST test digits in {getattr(digits, 'folder', '?')} (found {splits}); "
            "the rebuilt set uses the test digits"
        )
    if splits == ["test"]:
        start = 0
    else:  # train first: the test digits are the last 10,000 (MNIST's test set size)
        start = len(labels) - 10_000
    hashes = {k: v for k, v in dict(getattr(digits, "hashes", {}) or {}).items() if k.startswith("t10k")}
    return images[start:], labels[start:], hashes


def select_digits(labels: np.ndarray, seed: int, instances: int, num_classes: int = 10) -> np.ndarray:
    """Indices [3, C, N] into ``labels``: per class a seeded permutation of that class's
    digits; its first N are train, the next N valid, the next N test (disjoint)."""
    labels = np.asarray(labels)
    out = np.empty((3, num_classes, instances), np.int64)
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 3 * instances:
            raise ValueError(
                f"class {c} has {len(idx)} digits; {3 * instances} needed for {instances} instances per split"
            )
        perm = np.random.default_rng([seed, c]).permutation(len(idx))
        out[:, c, :] = idx[perm[: 3 * instances]].reshape(3, instances)
    return out


def draw_offsets(seed: int, size: int, instances: int, num_classes: int = 10) -> np.ndarray:
    """(x, y) offsets [3, C, N, 2], uniform in 0 .. 64 - size (inclusive) so the object is
    never cropped. One stream per (seed, size, split, class): a size's positions do not
    depend on which other sizes are built, and the first k instances are the same for any
    N >= k."""
    out = np.empty((3, num_classes, instances, 2), np.int64)
    for split in range(3):
        for c in range(num_classes):
            rng = np.random.default_rng([seed, size, split, c])
            out[split, c] = rng.integers(0, CANVAS - size + 1, size=(instances, 2))
    return out


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = int(TRUNCATE * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur_matrix(sigma: float, n: int = CANVAS) -> torch.Tensor:
    """[n, n] float64 matrix M with (M @ v) = v blurred by a Gaussian of ``sigma`` truncated
    at 4 sigma, edges replicated (skimage.filters.gaussian's mode 'nearest')."""
    k = _gaussian_kernel(sigma).numpy()
    r = (len(k) - 1) // 2
    m = np.zeros((n, n), np.float64)
    for i in range(n):
        for j, w in enumerate(k):
            m[i, min(max(i + j - r, 0), n - 1)] += w
    return torch.from_numpy(m)


def _blur(canvas: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [B, H, W] float64 as M @ X @ M^T (see :func:`blur_matrix`)."""
    m = blur_matrix(sigma, canvas.shape[-1])
    return m @ canvas @ m.T


def render(digits: torch.Tensor, size: int, offsets: torch.Tensor) -> torch.Tensor:
    """STIR's mnist recipe for a batch: 28x28 digits [B, 28, 28] (0..255) at side ``size``
    and (x, y) ``offsets`` [B, 2] -> uint8 [B, 64, 64]. Resize (bicubic; antialiased when
    shrinking; clipped to each digit's range like skimage's ``clip=True``), paste on a
    zero 64x64 canvas, Gaussian blur sigma = 7/8 * size/28, threshold 2/pi * arctan(0.02 *
    (x - 128)), min-max normalise to [0, 255] per image, truncate to uint8."""
    b = digits.shape[0]
    x = digits.to(torch.float64).unsqueeze(1)
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    small = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=size < x.shape[-1])
    small = torch.maximum(torch.minimum(small, hi), lo).squeeze(1)
    canvas = torch.zeros(b, CANVAS, CANVAS, dtype=torch.float64)
    ar = torch.arange(size)
    rows = (offsets[:, 1, None] + ar)[:, :, None]  # y
    cols = (offsets[:, 0, None] + ar)[:, None, :]  # x
    canvas[torch.arange(b)[:, None, None], rows, cols] = small
    y = _blur(canvas, BLUR * size / 28)
    y.sub_(CENTRE).mul_(GAIN).atan_().mul_(2 / math.pi)  # in place: the set is ~300 MB of pixels
    ymin = y.amin(dim=(1, 2), keepdim=True)
    span = y.amax(dim=(1, 2), keepdim=True) - ymin
    y.sub_(ymin).div_(span.clamp_min(1e-300)).mul_(255.0)  # a constant image (span 0) becomes all 0
    return y.to(torch.uint8)  # values in [0, 255]: truncation, like numpy's astype(np.uint8)


def build_mnist(digits, seed: int = 42, instances: int = 50, sizes=range(17, 65), progress: bool = False) -> dict:
    """An mnist-domain STIR set rebuilt from real digits (a :class:`sesn.data.sources.Digits`;
    only its MNIST test digits are used). Returns the npz arrays (see the module doc);
    ``sizes`` are stored in STIR's order (largest first). Deterministic for a seed."""
    if instances < 1:
        raise ValueError(f"instances must be >= 1, got {instances}")
    sizes = sorted({int(s) for s in sizes}, reverse=True)
    bad = [s for s in sizes if s not in ALL_SIZES]
    if bad or not sizes:
        raise ValueError(f"sizes must be a non-empty subset of 17..64, got {bad or 'nothing'}")
    images, labels, source_hashes = _test_digits(digits)
    if images.shape[1:] != (28, 28):
        raise ValueError(f"digits must be 28x28, got {images.shape[1:]}")
    C, N, S = 10, instances, len(sizes)
    srcs = select_digits(labels, seed, N, C)  # [3, C, N]
    src = torch.from_numpy(np.ascontiguousarray(images[srcs.reshape(-1)]))  # [3*C*N, 28, 28]
    imgs = np.empty((3, S, C, N, CANVAS, CANVAS), np.uint8)
    psts = np.empty((3, S, C, N, 2), np.int64)
    steps = enumerate(sizes)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, total=S, desc="sizes", unit="size", mininterval=0.5)
    for i, s in steps:
        off = draw_offsets(seed, s, N, C)
        psts[:, i] = off
        imgs[:, i] = render(src, s, torch.from_numpy(off.reshape(-1, 2))).reshape(3, C, N, CANVAS, CANVAS).numpy()
    lbls = np.broadcast_to(np.arange(C, dtype=np.int64)[None, None, :, None], (3, S, C, N)).copy()
    scls = np.broadcast_to(np.array(sizes, np.int64)[None, :, None, None], (3, S, C, N)).copy()
    src_note = ", ".join(f"{k} sha256 {v[:16]}" for k, v in sorted(source_hashes.items())) or "source hashes unknown"
    metadata = np.array(
        [
            [
                "title",
                f"MNIST (rebuilt by sesn from the 10,000 MNIST test digits, seed {seed}) - not STIR's Zenodo file",
            ],
            [
                "description",
                "STIR's mnist recipe (Altstidl et al., IJCNN 2023) rebuilt offline: "
                f"per class {N} train, {N} valid and "
                f"{N} test instances, disjoint, all MNIST test digits ({src_note}); sizes {sizes[-1]}..{sizes[0]} px; "
                "torch bicubic resize (STIR: skimage order-3), random offset in 64x64, Gaussian blur 7/8*s/28, "
                "threshold 2/pi*arctan(0.02*(x-128)), min-max to [0, 255], uint8.",
            ],
            ["author", "sesn (recipe: STIR, Altstidl et al., IJCNN 2023); digits: LeCun, Cortes, Burges (MNIST)"],
            ["license", "MNIST digits: CC BY-SA 3.0; STIR's data: CC BY 4.0"],
            ["version", RECIPE_VERSION],
            ["date", RECIPE_DATE],
        ]
    )
    lbldata = np.array([str(c) for c in range(C)])
    return {
        "imgs": imgs,
        "lbls": lbls,
        "scls": scls,
        "psts": psts,
        "metadata": metadata,
        "lbldata": lbldata,
        "srcs": srcs,
    }


def arrays_sha256(arrays: dict) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes (independent of the zip container)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def zlib_version() -> str:
    return zlib.ZLIB_RUNTIME_VERSION


# ---------------------------------------------------------------------------------------
# Reading STIR files (theirs and ours)


def _domain(path: Path, title: str) -> str:
    text = f"{path.stem} {title}".lower().replace(" ", "").replace("-", "").replace("_", "")
    for d in ("trafficsign", "emoji", "aerial", "mnist"):
        if d in text:
            return d
    if "gtsrb" in text or "traffic" in text:
        return "trafficsign"
    return "unknown"


@dataclasses.dataclass
class StirSet:
    """One STIR domain file, checked. Arrays are kept as loaded (uint8 images)."""

    path: Path
    domain: str
    rebuilt: bool
    num_classes: int
    channels: int
    sha256: str
    sizes: tuple  # in file order (STIR's: largest first)
    instances: int
    metadata: dict = dataclasses.field(repr=False)
    class_names: tuple = dataclasses.field(repr=False)
    imgs: np.ndarray = dataclasses.field(repr=False)
    lbls: np.ndarray = dataclasses.field(repr=False)
    scls: np.ndarray = dataclasses.field(repr=False)
    psts: np.ndarray = dataclasses.field(repr=False)

    def split(self, name: str, sizes, instances: int | None = None):
        """Images of one split at the given sizes: ``(x, y, size, box)`` with x float32
        [M, C, 64, 64] in [0, 1], y int64 [M], size int64 [M] (object side, px), box int64
        [M, 4] (x0, y0, x1, y1 of the object: x1 = x0 + size, exclusive). Ordered by size
        (as given), class, instance. ``instances=k`` keeps the first k instances per class
        and size."""
        if name not in SPLIT_ALIASES:
            raise ValueError(f"unknown split {name!r}; choose from {SPLITS}")
        si = SPLIT_ALIASES[name]
        sizes = [int(s) for s in sizes]
        if not sizes:
            raise ValueError("no sizes asked for")
        where = {s: i for i, s in enumerate(self.sizes)}
        missing = [s for s in sizes if s not in where]
        if missing:
            raise ValueError(
                f"{self.path}: sizes {missing} are not in the file (it has {min(self.sizes)}..{max(self.sizes)})"
            )
        n = self.instances if instances is None else int(instances)
        if not 1 <= n <= self.instances:
            raise ValueError(f"instances must be in 1..{self.instances}, got {instances}")
        idx = [where[s] for s in sizes]
        imgs = self.imgs[si, idx, :, :n]  # [S, C, n, 64, 64(, 3)]
        x = torch.from_numpy(np.ascontiguousarray(imgs)).reshape(-1, *imgs.shape[3:])
        x = x.unsqueeze(1) if self.channels == 1 else x.permute(0, 3, 1, 2)
        x = x.to(torch.float32).div_(255.0).contiguous()
        y = torch.from_numpy(self.lbls[si, idx, :, :n].astype(np.int64).reshape(-1))
        size = torch.from_numpy(self.scls[si, idx, :, :n].astype(np.int64).reshape(-1))
        pos = torch.from_numpy(self.psts[si, idx, :, :n].astype(np.int64).reshape(-1, 2))
        box = torch.cat([pos, pos + size[:, None]], dim=1)
        return x, y, size, box

    def scenario(self, k: int):
        """(train/valid sizes, test sizes) of STIR's scenario k."""
        if k not in SCENARIOS:
            raise ValueError(f"unknown scenario {k}; choose from {sorted(SCENARIOS)}")
        return SCENARIOS[k]


def _fail(path, msg):
    raise StirLayoutError(f"{path}: {msg}")


def load_stir(path, partial_sizes: bool = False, allow_pickle: bool = False) -> StirSet:
    """Read and check a STIR npz file (STIR's own, any domain, or our rebuilt mnist set).
    Layout errors raise :class:`StirLayoutError` (a ``DataFileError``/``ValueError``) naming
    the file and the problem. ``partial_sizes=True`` accepts files holding only some of the
    48 sizes (still in STIR's order, largest first), e.g. small test builds."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"{path}: file not found (STIR's files go in datasets/stir/; see docs/scale-generalization.md)"
        )
    try:
        z = np.load(path, allow_pickle=allow_pickle)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataFileError(f"{path}: not a readable npz file ({e})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        _fail(path, "is a single .npy array, not an npz archive of STIR's arrays")
    try:
        with z:
            missing = [k for k in REQUIRED_KEYS if k not in z.files]
            if missing:
                _fail(
                    path, f"missing key(s) {missing} (has {sorted(z.files)}); a STIR file holds {list(REQUIRED_KEYS)}"
                )
            arrays = {}
            for k in REQUIRED_KEYS:
                try:
                    arrays[k] = z[k]
                except ValueError as e:  # object arrays need pickle
                    if "pickle" in str(e).lower():
                        _fail(
                            path,
                            f"array {k!r} is stored as Python objects; "
                            "pass allow_pickle=True only if you trust the file",
                        )
                    raise DataFileError(f"{path}: array {k!r} is unreadable ({e})") from None
                except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                    raise DataFileError(f"{path}: array {k!r} is corrupt or truncated ({e})") from None
    except zipfile.BadZipFile as e:
        raise DataFileError(f"{path}: corrupt npz ({e})") from None
    sha = sha256_file(path)
    imgs, lbls, scls, psts = arrays["imgs"], arrays["lbls"], arrays["scls"], arrays["psts"]
    if imgs.dtype != np.uint8:
        _fail(path, f"imgs has dtype {imgs.dtype}, expected uint8")
    if imgs.ndim == 6:
        channels = 1
    elif imgs.ndim == 7 and imgs.shape[-1] == 3:
        channels = 3
    else:
        _fail(
            path,
            f"imgs has shape {imgs.shape}: expected rank 6 [3, sizes, classes, instances, 64, 64] (grayscale) "
            "or rank 7 [..., 64, 64, 3] (colour)",
        )
    if imgs.shape[0] != 3:
        _fail(path, f"imgs has {imgs.shape[0]} splits on axis 0, expected 3 (train, valid, test)")
    if imgs.shape[4:6] != (CANVAS, CANVAS):
        _fail(path, f"images are {imgs.shape[4]}x{imgs.shape[5]}, expected {CANVAS}x{CANVAS}")
    lead = imgs.shape[:4]
    for k, arr, tail in (("lbls", lbls, ()), ("scls", scls, ()), ("psts", psts, (2,))):
        if arr.shape != lead + tail:
            _fail(
                path,
                f"{k} has shape {arr.shape}, expected {lead + tail} "
                f"(the first four dimensions of imgs{', then 2' if tail else ''})",
            )
        if not np.issubdtype(arr.dtype, np.integer):
            _fail(path, f"{k} has dtype {arr.dtype}, expected an integer type")
    S, C, N = lead[1], lead[2], lead[3]
    if C < 1 or N < 1 or S < 1:
        _fail(path, f"empty layout {lead}")
    first = scls[:, :, :1, :1]
    if not (scls == first).all():
        _fail(path, "scls varies within a size index; each index of axis 1 must hold one size")
    sizes = tuple(int(s) for s in scls[0, :, 0, 0])
    if not (scls[:, :, 0, 0] == np.array(sizes)[None]).all():
        _fail(path, "scls differs between splits at the same size index")
    if partial_sizes:
        if any(s not in ALL_SIZES for s in sizes) or list(sizes) != sorted(set(sizes), reverse=True):
            _fail(path, f"sizes {list(sizes)} are not a subset of 17..64 in STIR's order (largest first)")
    elif sizes != ALL_SIZES:
        _fail(
            path,
            f"sizes along axis 1 are {_describe(sizes)}, expected STIR's 64, 63, ..., 17 (index 0 = 64 px); "
            "pass partial_sizes=True for a subset",
        )
    if lbls.min() < 0 or lbls.max() >= C:
        _fail(path, f"labels out of range: {int(lbls.min())}..{int(lbls.max())} for {C} classes")
    s_full = scls[..., None]
    if (psts < 0).any() or (psts + s_full > CANVAS).any():
        _fail(path, "psts puts some objects (partly) outside the 64x64 image")
    meta = arrays["metadata"]
    if meta.ndim != 2 or meta.shape[1] != 2:
        _fail(path, f"metadata has shape {meta.shape}, expected [rows, 2] (key, value)")
    metadata = {str(k): str(v) for k, v in meta}
    names = tuple(str(n) for n in np.asarray(arrays["lbldata"]).reshape(-1))
    if len(names) != C:
        _fail(path, f"lbldata names {len(names)} classes, imgs has {C}")
    title = metadata.get("title", "")
    return StirSet(
        path=path,
        domain=_domain(path, title),
        rebuilt="rebuilt" in title.lower(),
        num_classes=C,
        channels=channels,
        sha256=sha,
        sizes=sizes,
        instances=N,
        metadata=metadata,
        class_names=names,
        imgs=imgs,
        lbls=lbls,
        scls=scls,
        psts=psts,
    )


def _describe(sizes) -> str:
    sizes = list(sizes)
    if len(sizes) <= 6:
        return str(sizes)
    return f"[{sizes[0]}, {sizes[1]}, ..., {sizes[-1]}] ({len(sizes)} sizes)"
