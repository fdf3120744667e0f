"""Folders of PNG/JPEG images, labelled or not, decoded once and cached.

Three layouts are read, decided by what ``root`` holds:

* **labelled** (torchvision's ``ImageFolder`` convention): ``root/train/CLASS/*.jpg``,
  ``root/test/CLASS/...`` and, if present, ``root/valid/CLASS/...``. Each class
  is a subfolder (its images found recursively); the class names are sorted, as
  ``ImageFolder`` sorts them, and numbered 0..N-1 from the training folder, so
  label 0 is the first name in sorted order in every split.
* **split, unlabelled**: ``root/train/*.png``, ``root/test/*.png`` (no subfolders).
* **flat**: images anywhere under ``root`` (sorted by path), split by a fixed
  permutation into 80% train / 10% valid / 10% test.

Without a ``valid/`` folder the validation split is a fixed 10% of the training
folder (the same permutation every time) and ``train`` is the other 90%.

Each image is converted to grey or RGB, centre-cropped to a square (``crop=True``;
CelebA-style portraits keep their aspect instead of being squashed) and resized
with Lanczos filtering to ``size`` x ``size`` (untouched when already that size).

Decoding tens of thousands of JPEGs takes tens of seconds, so the decoded 8-bit
arrays of each source folder are kept in ``$PIXELZOO_DATA/decoded/`` (see
:func:`~pixelzoo.data.download.cache_dir`), keyed by a hash of the folder's path,
its file list with every file's size and modification time, and the decoding
options (size, channels, crop). Adding, removing or changing a file changes the
key, so the cache is rebuilt; a cache file that cannot be read is rebuilt too.
Quantizing to ``levels`` is done after the cache (it is cheap), so one cache
serves every ``levels``.
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pixelzoo.data.base import ImageDataset, quantize, split_indices
from pixelzoo.data.download import cache_dir
from pixelzoo.errors import ConfigError, DataError, WriteError
from pixelzoo.utils.io import atomic_write_bytes

EXTENSIONS = {".png", ".jpg", ".jpeg"}
VALID_FRACTION = 0.1  # of the training folder, when there is no valid/ folder
CACHE_VERSION = 1  # bump when decoding changes, so old caches are not read


@dataclass(frozen=True)
class Decoded:
    """The decoded images of one source folder: uint8 ``[N, C, H, W]``, labels or None, class names."""

    images: np.ndarray
    labels: np.ndarray | None
    classes: tuple[str, ...] | None


@dataclass(frozen=True)
class Listing:
    """The images of a folder in sorted order, with what the cache key needs of each file."""

    files: list[str]
    stamps: list[tuple[int, int]]  # (size, mtime_ns) of each file
    labels: list[int] | None
    classes: tuple[str, ...] | None


def _walk(folder: Path):
    """``(path, DirEntry)`` of every image under ``folder``, in no order (one ``scandir`` pass)."""
    stack = [str(folder)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for e in entries:
                if e.is_dir():
                    stack.append(e.path)
                elif os.path.splitext(e.name)[1].lower() in EXTENSIONS and e.is_file():
                    yield e.path, e


def _images_in(folder: Path) -> list[tuple[str, os.stat_result]]:
    """The images under ``folder`` in the order of sorted paths (as ``sorted(Path)`` orders
    them), each with its stat (50,000 files in a fraction of a second)."""
    found = [(path, e.stat()) for path, e in _walk(folder)]
    found.sort(key=lambda item: item[0].split(os.sep))
    return found


def _class_folders(folder: Path) -> list[Path]:
    """The subfolders of ``folder`` that hold an image, sorted by name."""
    dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    return [d for d in dirs if next(_walk(d), None) is not None]


def _listing(folder: Path) -> Listing:
    """The images of ``folder``, their labels and the class names (None when unlabelled)."""
    class_dirs = _class_folders(folder)
    if not class_dirs:
        found = _images_in(folder)
        return Listing(
            [p for p, _ in found], [(st.st_size, st.st_mtime_ns) for _, st in found], None, None
        )
    loose = sorted(p for p in folder.iterdir() if p.suffix.lower() in EXTENSIONS and p.is_file())
    if loose:
        raise DataError(
            f"image folder {folder} mixes class folders ({class_dirs[0].name}, ...) with loose "
            f"images ({loose[0].name}); put every image in its class folder"
        )
    files, stamps, labels = [], [], []
    for k, d in enumerate(class_dirs):
        found = _images_in(d)
        files += [p for p, _ in found]
        stamps += [(st.st_size, st.st_mtime_ns) for _, st in found]
        labels += [k] * len(found)
    return Listing(files, stamps, labels, tuple(d.name for d in class_dirs))


def _decode(path: Path, size: int, mode: str, crop: bool | int) -> np.ndarray:
    """One image as uint8 ``[size, size, C]``: ``crop`` True centre-crops it to a square
    of its shorter side, an integer to a square of that side, before resizing."""
    try:
        # An image larger than Pillow's limit is a decompression bomb, never a photo
        # to resize: an error, not Pillow's warning.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im = im.convert(mode)
                side = min(im.width, im.height) if crop is True else int(crop)
                if crop and (im.width, im.height) != (side, side):
                    if side > min(im.width, im.height):
                        raise DataError(
                            f"image {path} is {im.width}x{im.height}, smaller than its "
                            f"{side}x{side} crop"
                        )
                    left, top = (im.width - side) // 2, (im.height - side) // 2
                    im = im.crop((left, top, left + side, top + side))
                if im.size != (size, size):
                    im = im.resize((size, size), Image.Resampling.LANCZOS)
                return np.asarray(im, dtype=np.uint8).reshape(size, size, -1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"image {path} is too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"image {path} cannot be read ({e})") from None


def _cache_key(folder: Path, listing: Listing, options: tuple) -> str:
    h = hashlib.sha256(repr((CACHE_VERSION, str(folder.resolve()), options)).encode())
    cut = len(str(folder)) + 1
    for p, (size, mtime) in zip(listing.files, listing.stamps, strict=True):
        h.update(f"{p[cut:]}\0{size}\0{mtime}\n".encode())
    return h.hexdigest()[:24]


def _read_cache(path: Path, n: int) -> Decoded | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            images, labels = z["images"], z["labels"]
            classes = tuple(str(c) for c in z["classes"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None  # a cache cut short or damaged: decode again
    if len(images) != n:
        return None
    return Decoded(images, labels if len(labels) else None, classes or None)


def _write_cache(path: Path, decoded: Decoded) -> None:
    buf = io.BytesIO()
    np.savez(
        buf,
        images=decoded.images,
        labels=decoded.labels if decoded.labels is not None else np.zeros(0, np.int64),
        classes=np.array(decoded.classes or (), dtype=str),
    )
    try:
        atomic_write_bytes(path, buf.getvalue())
    except WriteError as e:  # a full or read-only cache costs the next start time, nothing else
        warnings.warn(f"the decoded images were not cached: {e}", stacklevel=3)


def decode_folder(
    folder: Path, *, size: int, channels: int, crop: bool | int, cache: bool = True
) -> Decoded:
    """Every image of ``folder`` (labelled by class subfolders when it has them), decoded or read from the cache."""
    return decode_listing(folder, _listing(folder), size=size, channels=channels, crop=crop,
                          cache=cache)  # fmt: skip


def listing_of(folder: Path, names: list[str]) -> Listing:
    """The files ``names`` of ``folder`` in that order (unlabelled), for :func:`decode_listing`;
    a missing one is named in one sentence."""
    files, stamps = [], []
    for name in names:
        path = folder / name
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataError(f"image {path} is missing") from None
        files.append(str(path))
        stamps.append((st.st_size, st.st_mtime_ns))
    return Listing(files, stamps, None, None)


def decode_listing(
    folder: Path, listing: Listing, *, size: int, channels: int, crop: bool | int,
    cache: bool = True,
) -> Decoded:  # fmt: skip
    """The images of ``listing`` (files of ``folder``), decoded or read from the cache."""
    if not listing.files:
        return Decoded(np.zeros((0, channels, size, size), np.uint8), None, None)
    path = cache_dir() / "decoded" / f"{_cache_key(folder, listing, (size, channels, crop))}.npz"
    if cache and (hit := _read_cache(path, len(listing.files))) is not None:
        return hit
    mode = "L" if channels == 1 else "RGB"
    images = np.stack([_decode(p, size, mode, crop) for p in listing.files]).transpose(0, 3, 1, 2)
    labels = listing.labels
    decoded = Decoded(
        np.ascontiguousarray(images),
        None if labels is None else np.asarray(labels, np.int64),
        listing.classes,
    )
    if cache:
        _write_cache(path, decoded)
    return decoded


def _take(decoded: Decoded, index: np.ndarray) -> Decoded:
    labels = None if decoded.labels is None else decoded.labels[index]
    return Decoded(decoded.images[index], labels, decoded.classes)


def _split(root: Path, split: str, size: int, channels: int, crop: bool) -> Decoded:
    options = {"size": size, "channels": channels, "crop": crop}
    if (root / "train").is_dir():
        if (root / split).is_dir():
            part = decode_folder(root / split, **options)
            if split != "train" or (root / "valid").is_dir():
                return part
        elif split != "valid":
            raise DataError(f"image folder {root} has train/ but no {split}/ folder")
        else:
            part = decode_folder(root / "train", **options)
        idx = split_indices(len(part.images), (VALID_FRACTION, 0.0), seed=0)[split]
        return _take(part, idx.numpy())
    every = decode_folder(root, **options)
    return _take(every, split_indices(len(every.images), (0.1, 0.1), seed=0)[split].numpy())


def _match_classes(root: Path, split: str, part: Decoded) -> Decoded:
    """A test/valid folder's labels renumbered to the training folder's class order."""
    if split == "train" or not (root / split).is_dir() or not (root / "train").is_dir():
        return part
    train_classes = tuple(d.name for d in _class_folders(root / "train")) or None
    if (part.classes is None) != (train_classes is None):
        which = "has" if part.classes is not None else "has no"
        raise DataError(
            f"image folder {root / split} {which} class folders but {root / 'train'} "
            f"{'has none' if train_classes is None else 'has'}; label both or neither"
        )
    if part.classes is None:
        return part
    unknown = sorted(set(part.classes) - set(train_classes))
    if unknown:
        raise DataError(
            f"image folder {root / split} has class {unknown[0]!r}, which {root / 'train'} has not"
        )
    order = np.array([train_classes.index(c) for c in part.classes], np.int64)
    return Decoded(part.images, order[part.labels], train_classes)


def load_folder(
    split: str,
    root=None,
    *,
    size: int = 32,
    channels: int = 3,
    levels: int = 256,
    crop: bool = True,
) -> ImageDataset:
    """One split of an image folder (see the module docstring for the layouts).

    Args:
        split: "train", "valid" or "test".
        root: the folder (the CLI's --data-dir).
        size: images are resized to size x size.
        channels: 1 (grey) or 3 (RGB).
        levels: intensity levels K; 256 keeps the 8-bit values.
        crop: centre-crop non-square images to a square before resizing.
    """
    if root is None:
        raise ConfigError("dataset 'folder' needs --data-dir (root=) naming the image folder")
    if channels not in (1, 3):
        raise ConfigError(f"folder: channels must be 1 (grey) or 3 (RGB), got {channels}")
    if not 2 <= levels <= 256:
        raise ConfigError(f"folder: levels must be in 2..256, got {levels}")
    if not 1 <= size <= 4096:
        raise ConfigError(f"folder: size must be in 1..4096, got {size}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist")
    part = _match_classes(root, split, _split(root, split, size, channels, crop))
    if not len(part.images):
        raise DataError(f"image folder {root} holds no PNG/JPEG images for split {split!r}")
    labels = None if part.labels is None else torch.from_numpy(part.labels)
    return ImageDataset(
        quantize(torch.from_numpy(part.images), levels),
        levels=levels,
        labels=labels,
        name="folder",
        split=split,
        num_classes=None if part.classes is None else len(part.classes),
        classes=part.classes,
    )


__all__ = ["EXTENSIONS", "decode_folder", "decode_listing", "listing_of", "load_folder"]
