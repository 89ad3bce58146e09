"""Size equivariance of a model's own features, as STIR measures it.

For the same object (same source digit, same class) shown at sizes a and b, with boxes
``box_a`` and ``box_b`` (the object's pixels in the 64 x 64 image):

    Delta(a -> b) = sum_n || F_b[box_b] - resize(F_a[box_a], size of box_b) ||^2 / sum_n || F_b[box_b] ||^2

where F is the image-aligned feature map the model's global pool reads (``model.features``;
scale-translation features max-projected over scales) and ``resize`` is bilinear
(antialiased when shrinking). 0 = the features of the object at size a, resized, are the
features at size b; 1 = as different as the features themselves.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _crop(f: torch.Tensor, box) -> torch.Tensor:
    x0, y0, x1, y1 = (int(v) for v in box)
    return f[:, y0:y1, x0:x1]


@torch.no_grad()
def size_equivariance(model, x_a, box_a, x_b, box_b, batch: int = 64) -> float:
    """Delta(a -> b) over paired images ``x_a[n]``, ``x_b[n]`` (the same objects)."""
    if len(x_a) != len(x_b):
        raise ValueError(f"size_equivariance: {len(x_a)} images at size a but {len(x_b)} at size b")
    num = den = 0.0
    for i in range(0, len(x_a), batch):
        fa = model.features(x_a[i : i + batch])
        fb = model.features(x_b[i : i + batch])
        for n in range(fa.shape[0]):
            ca, cb = _crop(fa[n], box_a[i + n]), _crop(fb[n], box_b[i + n])
            shrink = cb.shape[-1] < ca.shape[-1]
            ra = F.interpolate(
                ca[None].double(), size=cb.shape[-2:], mode="bilinear", align_corners=False, antialias=shrink
            )[0]
            num += float((cb.double() - ra).pow(2).sum())
            den += float(cb.double().pow(2).sum())
    return num / den if den else float("nan")
