"""STL-10 (docs/protocols.md) through torchvision's reader, with the paper's transforms.

Train: zero-pad 12 + random crop 96, horizontal flip (p=0.5), per-channel normalisation,
Cutout of one 32x32 hole whose centre is uniform over the image (the hole may extend past
the border, as in the original Cutout). Test: normalisation only. Nothing is downloaded
unless ``download=True``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torchvision
from torchvision.transforms import v2 as T

from sesn.data.idx import DataFileError

STL10_MEAN = (0.4467, 0.4398, 0.4066)
STL10_STD = (0.2603, 0.2566, 0.2713)
IMAGE_BYTES = 3 * 96 * 96


class Cutout(torch.nn.Module):
    """Zero one ``size`` x ``size`` square centred at a uniformly drawn pixel; the square
    is clipped at the image border (so it may cover less than size^2 pixels)."""

    def __init__(self, size: int = 32):
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy = int(torch.randint(0, h, (1,)))
        cx = int(torch.randint(0, w, (1,)))
        y0, y1 = max(0, cy - self.size // 2), min(h, cy + self.size // 2)
        x0, x1 = max(0, cx - self.size // 2), min(w, cx + self.size // 2)
        img = img.clone()
        img[..., y0:y1, x0:x1] = 0
        return img


def stl10_train_transform() -> T.Compose:
    return T.Compose(
        [
            T.PILToTensor(),
            T.RandomCrop(96, padding=12, fill=0),
            T.RandomHorizontalFlip(0.5),
            T.ToDtype(torch.float32, scale=True),
            T.Normalize(STL10_MEAN, STL10_STD),
            Cutout(32),
        ]
    )


def stl10_test_transform() -> T.Compose:
    return T.Compose([T.PILToTensor(), T.ToDtype(torch.float32, scale=True), T.Normalize(STL10_MEAN, STL10_STD)])


class STL10(torchvision.datasets.STL10):
    """torchvision's STL10 with an explicit integrity mode.

    ``verify="md5"`` (default) checks the official md5 sums like torchvision does;
    ``verify="layout"`` only checks that the binary files exist and are consistent (whole
    3x96x96 images, as many labels as images, labels in 1..10), for small test files
    written in the exact STL-10 layout.
    """

    def __init__(self, root, split="train", transform=None, download=False, verify="md5"):
        self._verify_mode = verify
        root = os.path.expanduser(str(root))
        if not download:
            self._check_layout(Path(root) / self.base_folder, split)
        super().__init__(root, split=split, transform=transform, download=download)

    def _check_integrity(self) -> bool:
        if self._verify_mode == "layout":
            return True  # checked by _check_layout before loading
        return super()._check_integrity()

    @classmethod
    def _check_layout(cls, folder: Path, split: str) -> None:
        pairs = {"train": [("train_X.bin", "train_y.bin")], "test": [("test_X.bin", "test_y.bin")]}.get(split, [])
        for x_name, y_name in pairs:
            x_path, y_path = folder / x_name, folder / y_name
            for p in (x_path, y_path):
                if not p.exists():
                    raise FileNotFoundError(
                        f"{p}: not found. STL-10 is not downloaded automatically; get it with "
                        "`sesn data stl10 --download` (2.6 GB) or place the stl10_binary folder under the data root"
                    )
            size = x_path.stat().st_size
            if size == 0 or size % IMAGE_BYTES:
                raise DataFileError(
                    f"{x_path}: {size} bytes is not a whole number of 3x96x96 images: truncated or corrupt"
                )
            n_labels = y_path.stat().st_size
            if n_labels != size // IMAGE_BYTES:
                raise DataFileError(f"{x_path} holds {size // IMAGE_BYTES} images but {y_path} has {n_labels} labels")
            labels = y_path.read_bytes()
            if labels and (min(labels) < 1 or max(labels) > 10):
                raise DataFileError(f"{y_path}: labels must be 1..10, found {min(labels)}..{max(labels)}")
