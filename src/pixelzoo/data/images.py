"""Images to files: grids as PNG (samples, completions, closest pairs), and sample sets as .npz or a PNG folder."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from pixelzoo.data.base import to_uint8
from pixelzoo.errors import InputError
from pixelzoo.utils.io import atomic_write_bytes


def make_grid(
    images: torch.Tensor, levels: int, nrow: int | None = None, pad: int = 1, fill: int = 128
) -> np.ndarray:
    """Integer images ``[N, C, H, W]`` -> one uint8 array ``[rows*(H+pad), cols*(W+pad), C]``
    (``levels=256`` keeps the values as they are; ``fill`` is the padding's value)."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    x = to_uint8(images.cpu(), levels).permute(0, 2, 3, 1).numpy()
    grid = np.full((ncol * (h + pad) + pad, nrow * (w + pad) + pad, c), fill, dtype=np.uint8)
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


def save_npz(images: torch.Tensor, levels: int, path) -> None:
    """Integer images as ``.npz``: ``images`` (uint8 ``[N, C, H, W]``, values in 0..levels-1),
    ``images_8bit`` (the same scaled to 0..255, channels last, as tools such as pytorch-fid
    read them) and ``levels``."""
    x = images.cpu().to(torch.uint8)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        images=x.numpy(),
        images_8bit=to_uint8(x, levels).permute(0, 2, 3, 1).numpy(),
        levels=np.array(levels),
    )
    atomic_write_bytes(path, buf.getvalue())


def save_png_folder(images: torch.Tensor, levels: int, folder) -> list[Path]:
    """One 8-bit PNG per image (``00000.png``, ...) in ``folder``: what FID tools read."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; give a folder for the PNG images")
    x = to_uint8(images.cpu(), levels).permute(0, 2, 3, 1).numpy()
    width = max(5, len(str(len(x) - 1)))
    paths = []
    for k, img in enumerate(x):
        im = Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        paths.append(folder / f"{k:0{width}d}.png")
        atomic_write_bytes(paths[-1], buf.getvalue())
    return paths


def load_images(paths, shape, levels: int) -> torch.Tensor:
    """Image files as integer images ``[N, C, H, W]`` at ``levels`` levels, exactly.

    Each file must already be the model's ``(C, H, W)`` (grey for C = 1, RGB for C = 3)
    and, below 256 levels, hold only the 8-bit values that ``levels`` levels map to (what
    :func:`save_png_folder` writes): anything else could not come back bit for bit, so it
    is refused in one sentence rather than quantized.
    """
    channels, height, width = shape
    out = []
    for path in map(Path, paths):
        try:
            with Image.open(path) as im:
                im.load()
                mode = im.mode
                if channels == 1 and mode not in ("L", "1"):
                    raise InputError(f"{path} is a {mode} image; the model reads grey images (L)")
                if "A" in mode:
                    raise InputError(f"{path} has an alpha channel ({mode}); give RGB or grey")
                arr = np.asarray(im.convert("L" if channels == 1 else "RGB"))
        except FileNotFoundError:
            raise InputError(f"{path} does not exist") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise InputError(f"{path} is not a readable image ({e})") from None
        if arr.shape[:2] != (height, width):
            raise InputError(
                f"{path} is {arr.shape[1]}x{arr.shape[0]} pixels; the model reads {width}x{height}"
            )
        x = torch.from_numpy(arr.copy()).reshape(height, width, channels).permute(2, 0, 1)
        q = (x.long() * (levels - 1) + 127) // 255  # the inverse of to_uint8 where one exists
        if not torch.equal(to_uint8(q, levels), x):
            raise InputError(
                f"{path} has 8-bit values that {levels} levels cannot hold exactly (the model "
                f"codes {levels} levels: 0 and 255 only for binary images)"
            )
        out.append(q)
    return torch.stack(out)
