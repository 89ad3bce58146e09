"""Synthetic scale-varying shapes for fast, download-free model checks.

Three classes drawn at a random scale in ``[min_scale, max_scale]`` about the centre of
a 28x28 zero canvas, with a random sub-pixel offset and smooth edges: 0 = disk,
1 = ring, 2 = plus sign. Deterministic for a ``torch.Generator``.
"""

from __future__ import annotations

import torch


def shapes(
    n: int,
    generator: torch.Generator,
    size: int = 28,
    min_scale: float = 0.5,
    max_scale: float = 1.0,
    dtype=torch.float32,
):
    """Returns ``(images [n, 1, size, size], labels [n], scales [n])``."""
    labels = torch.randint(0, 3, (n,), generator=generator)
    scales = min_scale + (max_scale - min_scale) * torch.rand(n, generator=generator, dtype=torch.float64)
    offsets = (torch.rand(n, 2, generator=generator, dtype=torch.float64) - 0.5) * 2.0
    c = (size - 1) / 2
    yy = torch.arange(size, dtype=torch.float64).view(1, -1, 1) - c - offsets[:, 0].view(-1, 1, 1)
    xx = torch.arange(size, dtype=torch.float64).view(1, 1, -1) - c - offsets[:, 1].view(-1, 1, 1)
    unit = 10.0 * scales.view(-1, 1, 1)  # outer radius in px at scale 1
    r = torch.sqrt(yy**2 + xx**2) / unit
    edge = lambda d: torch.sigmoid(d * unit / 0.7)  # noqa: E731  ~0.7 px soft edge
    disk = edge(1.0 - r)
    ring = edge(1.0 - r) * edge(r - 0.55)
    bar = 0.28
    plus = torch.maximum(
        edge(bar - (yy.abs() / unit)) * edge(1.0 - xx.abs() / unit),
        edge(bar - (xx.abs() / unit)) * edge(1.0 - yy.abs() / unit),
    )
    stack = torch.stack([disk, ring, plus], 1)
    images = stack[torch.arange(n), labels].unsqueeze(1)
    return images.to(dtype), labels, scales
