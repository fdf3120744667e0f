"""A folder of PNG/JPEG images, resized and quantized to K levels.

If the folder has ``train/``, ``valid/`` and ``test/`` subfolders they are the
splits; otherwise all images (found recursively, sorted by path) are split by a
fixed permutation into 80% train / 10% valid / 10% test.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pixelzoo.data.base import ImageDataset, quantize, split_indices
from pixelzoo.errors import ConfigError, DataError

EXTENSIONS = {".png", ".jpg", ".jpeg"}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def load_folder(
    split: str, root=None, *, size: int = 32, channels: int = 3, levels: int = 256
) -> ImageDataset:
    if root is None:
        raise ConfigError("dataset 'folder' needs --data-dir (root=) naming the image folder")
    if channels not in (1, 3):
        raise ConfigError(f"folder: channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 2 <= levels <= 256:
        raise ConfigError(f"folder: levels must be in 2..256, got {levels}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    if (root / split).is_dir():
        files = _images_in(root / split)
    else:
        files = _images_in(root)
        if files:
            idx = split_indices(len(files), (0.1, 0.1), seed=0)[split]
            files = [files[i] for i in idx.tolist()]
    if not files:
        raise DataError(f"image folder {root} holds no PNG/JPEG images for split {split!r}")
    mode = "L" if channels == 1 else "RGB"
    arrays = []
    for path in files:
        try:
            # An image larger than Pillow's limit is a decompression bomb, never a photo
            # to resize: an error, not Pillow's warning.
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    im = im.convert(mode).resize((size, size), Image.Resampling.LANCZOS)
                    arrays.append(np.asarray(im, dtype=np.uint8).reshape(size, size, channels))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise DataError(f"image {path} is too large to decode safely ({e})") from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise DataError(f"image {path} cannot be read ({e})") from None
    x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return ImageDataset(quantize(x, levels), levels=levels, name="folder", split=split)
