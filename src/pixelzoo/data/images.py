"""Image grids as PNG files (sample grids, completions, closest pairs)."""

from __future__ import annotations

import io
import math

import numpy as np
import torch
from PIL import Image

from pixelzoo.data.base import to_uint8
from pixelzoo.utils.io import atomic_write_bytes


def make_grid(
    images: torch.Tensor, levels: int, nrow: int | None = None, pad: int = 1
) -> np.ndarray:
    """Integer images ``[N, C, H, W]`` -> one uint8 array ``[rows*(H+pad), cols*(W+pad), C]``."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    x = to_uint8(images.cpu(), levels).permute(0, 2, 3, 1).numpy()
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), 128, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, nrow)
        top, left = pad + r * (h + pad), pad + q * (w + pad)
        grid[top : top + h, left : left + w] = x[k]
    return grid


def save_grid(
    images: torch.Tensor, levels: int, path, nrow: int | None = None, scale: int | None = None
) -> None:
    """Save a grid PNG, upscaled (nearest) so small images stay visible."""
    grid = make_grid(images, levels, nrow)
    if scale is None:
        scale = max(1, 64 // images.shape[-1])
    img = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
