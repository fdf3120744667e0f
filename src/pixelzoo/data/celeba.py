"""CelebA (Liu, Luo, Wang, Tang 2015, "Deep Learning Face Attributes in the Wild"),
aligned and cropped faces: 202,599 RGB images of 178x218, split 162,770 train /
19,867 valid / 19,962 test by the official partition.

Reads the layout the dataset is distributed in, from ``root``: the folder
``img_align_celeba/`` (``000001.jpg`` ..) and the partition file
``list_eval_partition.txt`` (lines ``000001.jpg 0``; 0 train, 1 valid, 2 test), or
its CSV form ``list_eval_partition.csv`` (``image_id,partition``). Each image is
centre-cropped to a ``crop`` x ``crop`` square (default 148, the crop of the flow
papers, Dinh et al. 2017 §4.1; 178 keeps the whole width; ``crop=0`` takes the
largest square) and resized to ``size`` (32 or 64 as in PGGAN's and the flows'
low-resolution experiments; any size works). Decoded images are cached like an
image folder's (:mod:`pixelzoo.data.folder`), keyed by the files and options.
The files are on Google Drive behind a confirmation page, so there is no download.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pixelzoo.data.base import ImageDataset, quantize
from pixelzoo.data.folder import decode_listing, listing_of
from pixelzoo.errors import ConfigError, DataError

IMAGES = "img_align_celeba"
PARTITION = ("list_eval_partition.txt", "list_eval_partition.csv")
SPLIT_CODE = {"train": 0, "valid": 1, "test": 2}


def read_partition(root: Path) -> dict[int, list[str]]:
    """The image names of each split code (0, 1, 2), in the partition file's order."""
    path = next((root / n for n in PARTITION if (root / n).is_file()), None)
    if path is None:
        raise DataError(f"celeba: {root} has no {' or '.join(PARTITION)} (the official split)")
    out: dict[int, list[str]] = {0: [], 1: [], 2: []}
    lines = path.read_text(errors="replace").splitlines()
    for k, line in enumerate(lines, start=1):
        parts = line.replace(",", " ").split()
        if not parts or (k == 1 and parts[0] == "image_id"):
            continue  # a blank line, or the CSV's header
        if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
            raise DataError(
                f"{path} line {k} is not 'IMAGE PARTITION' with partition 0, 1 or 2: {line!r}"
            )
        out[int(parts[1])].append(parts[0])
    return out


def load_celeba(
    split: str, root=None, *, size: int = 64, crop: int = 148, levels: int = 256
) -> ImageDataset:
    if root is None:
        raise ConfigError(
            "dataset 'celeba' needs --data-dir (root=): the folder holding img_align_celeba/ and "
            "list_eval_partition.txt"
        )
    if not 1 <= size <= 1024:
        raise ConfigError(f"celeba: size must be in 1..1024, got {size}")
    if not 0 <= crop <= 178:
        raise ConfigError(f"celeba: crop must be in 0..178 (0: the largest square), got {crop}")
    if not 2 <= levels <= 256:
        raise ConfigError(f"celeba: levels must be in 2..256, got {levels}")
    root = Path(root)
    if not (root / IMAGES).is_dir():
        raise DataError(f"celeba: {root} has no {IMAGES}/ folder")
    names = read_partition(root)[SPLIT_CODE[split]]
    if not names:
        raise DataError(f"celeba: the partition file lists no {split} images")
    listing = listing_of(root / IMAGES, names)
    decoded = decode_listing(root / IMAGES, listing, size=size, channels=3, crop=crop or True)
    return ImageDataset(
        quantize(torch.from_numpy(decoded.images), levels), levels=levels, name="celeba",
        split=split,
    )  # fmt: skip
