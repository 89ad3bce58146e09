"""PyTorch datasets and loaders for MNIST-scale (docs/protocols.md) and STL-10 (docs/protocols.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import InterpolationMode
from torchvision.transforms import v2 as T

from sesn.data.mnist_scale import load_split

MNIST_SCALE_MEAN, MNIST_SCALE_STD = 0.0607, 0.2161
PLUS_SCALE_RANGE = (0.5, 2.0)


def mnist_scale_transform(augment: bool) -> T.Compose:
    """uint8 ``[1, 28, 28]`` tensor -> normalised float; ``augment`` adds the "+" random
    rescale in [0.5, 2.0] (torchvision RandomAffine, bicubic, on a PIL image as the
    reference did: the tensor affine has no bicubic mode)."""
    steps: list = []
    if augment:
        steps += [
            T.ToPILImage(),
            T.RandomAffine(degrees=0, scale=PLUS_SCALE_RANGE, interpolation=InterpolationMode.BICUBIC, fill=0),
            T.PILToTensor(),
        ]
    steps += [T.ToDtype(torch.float32, scale=True), T.Normalize([MNIST_SCALE_MEAN], [MNIST_SCALE_STD])]
    return T.Compose(steps)


class MNISTScale(Dataset):
    """One split of a generated MNIST-scale realization (checksum verified on load)."""

    def __init__(self, folder: str | Path, split: str, augment: bool = False, check: bool = True):
        arrays = load_split(Path(folder), split, check=check)
        self.images = torch.from_numpy(arrays["images"]).unsqueeze(1)  # [N, 1, 28, 28] uint8
        self.labels = torch.from_numpy(arrays["labels"].astype(np.int64))
        self.scales = arrays["scales"]
        self.transform = mnist_scale_transform(augment)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def _worker_init(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; numpy/random follow it
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    import random

    random.seed(seed)


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    seed: int,
    num_workers: int = 0,
    drop_last: bool = False,
    sampler=None,
) -> DataLoader:
    """A loader whose order and augmentation are fixed by ``seed`` (explicit generator)."""
    g = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle and sampler is None,
        sampler=sampler,
        num_workers=num_workers,
        generator=g,
        worker_init_fn=_worker_init,
        drop_last=drop_last,
        persistent_workers=num_workers > 0,
    )
