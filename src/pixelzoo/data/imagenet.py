"""Downsampled ImageNet (Chrabaszcz, Loshchilov, Hutter 2017, "A Downsampled Variant
of ImageNet as an Alternative to the CIFAR datasets"): 32x32 or 64x64 RGB,
1,281,167 train / 50,000 validation images, 1,000 classes.

Reads the ``.npz`` batches of ``Imagenet32_train_npz.zip`` / ``Imagenet32_val_npz.zip``
(or the 64x64 ones) as unpacked under ``root``: ``train_data_batch_1.npz`` ..
``train_data_batch_10.npz`` and ``val_data.npz``, found anywhere below ``root``
(``root/Imagenet32_train_npz/...`` as the zips unpack, or all in one folder). Each
holds ``data`` (uint8 ``[N, 3 * S * S]``, channel-major like CIFAR's batches),
``labels`` (1..1000) and ``mean``; labels here are 0..999. ``size`` picks 32 or 64
(the batches' size is checked against it). The official validation images are the
``test`` split, as in the likelihood papers (PixelRNN, PixelSNAIL report bits/dim
on them); ``valid`` is the last ``valid_size`` (default 10,000) training images.
The files are behind image-net.org's login, so there is no download: put them in a
folder and pass it (``--data-dir``).

NOTE: PixelRNN's own ImageNet results used van den Oord et al.'s earlier downsampled
set (image files, no labels); these batches are the same task at the same sizes,
from a different resize, so bits/dim are close but not identical.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from pixelzoo.data.base import ImageDataset, quantize
from pixelzoo.errors import ConfigError, DataError

TRAIN_BATCHES = [f"train_data_batch_{i}.npz" for i in range(1, 11)]
VALID_FILE = "val_data.npz"


def _find(root: Path, name: str, size: int) -> Path:
    found = sorted(root.rglob(name))
    if not found:
        raise DataError(
            f"imagenet{size}: {root} holds no {name} (unpack Imagenet{size}_train_npz.zip and "
            f"Imagenet{size}_val_npz.zip from image-net.org into it)"
        )
    if len(found) > 1:  # 32 and 64 side by side: the one whose folder names the size
        named = [p for p in found if f"{size}" in str(p.relative_to(root))]
        if len(named) == 1:
            return named[0]
        raise DataError(f"imagenet{size}: {root} holds {len(found)} files named {name}; keep one")
    return found[0]


def read_batch(path: Path, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 3, S, S], labels int64 [N] in 0..999)`` of one ``.npz`` batch."""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("data", "labels") if k not in z.files]
            if not missing:
                data, labels = z["data"], np.asarray(z["labels"])
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}); unpack it again") from None
    if missing:
        raise DataError(
            f"{path} is not a downsampled-ImageNet batch: it has no {missing[0]!r} array"
        )
    per = 3 * size * size
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != per:
        side = int(round((data.shape[1] / 3) ** 0.5)) if data.ndim == 2 else "?"
        raise DataError(
            f"{path} holds {data.dtype} rows of {data.shape[1:]} values ({side}x{side} images), "
            f"not the {size}x{size} batches asked for"
        )
    labels = labels.reshape(-1)
    if len(labels) != len(data):
        raise DataError(f"{path} is corrupt: {len(labels)} labels for {len(data)} images")
    if len(labels) and (labels.min() < 1 or labels.max() > 1000):
        raise DataError(f"{path} is corrupt: its labels are not all in 1..1000")
    return data.reshape(-1, 3, size, size), labels.astype(np.int64) - 1


def load_imagenet(
    split: str, root=None, *, size: int = 32, valid_size: int = 10_000, levels: int = 256
) -> ImageDataset:
    if size not in (32, 64):
        raise ConfigError(f"imagenet: size must be 32 or 64, got {size}")
    if not 2 <= levels <= 256:
        raise ConfigError(f"imagenet: levels must be in 2..256, got {levels}")
    if root is None:
        raise ConfigError(
            "dataset 'imagenet' needs --data-dir (root=): its files are behind image-net.org's "
            "login, so pixelzoo cannot download them"
        )
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"imagenet{size}: folder {root} does not exist")
    if split == "test":
        x, y = read_batch(_find(root, VALID_FILE, size), size)
    else:
        parts = [read_batch(_find(root, name, size), size) for name in TRAIN_BATCHES]
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        if split == "valid" and valid_size <= 0:
            raise ConfigError("imagenet: there is no 'valid' split when valid_size=0")
        if valid_size >= len(x):
            raise ConfigError(
                f"imagenet: valid_size={valid_size} leaves no training images of {len(x)}"
            )
        keep = len(x) - valid_size
        x, y = (x[:keep], y[:keep]) if split == "train" else (x[keep:], y[keep:])
    return ImageDataset(
        quantize(torch.from_numpy(np.ascontiguousarray(x)), levels), levels=levels,
        labels=torch.from_numpy(y), name="imagenet", split=split, num_classes=1000,
    )  # fmt: skip
