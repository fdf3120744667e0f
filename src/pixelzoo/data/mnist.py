"""MNIST (LeCun et al. 1998), Fashion-MNIST (Xiao, Rasul, Vollgraf 2017) and
statically binarized MNIST (Larochelle & Murray 2011).

* ``mnist``: the four official idx files (``.gz`` or uncompressed), 8-bit grey,
  labels. The validation split is the last ``valid_size`` training images (default
  10,000, the usual 50k/10k split); ``valid_size=0`` trains on all 60k. Options:
  ``binarize="dynamic"`` (a fresh Bernoulli sample of every training batch, and a
  fixed sample of the evaluation splits) or ``"threshold"`` (pixel > 127), and
  ``levels`` to quantize the 256 grey levels.
* ``fashion_mnist``: Zalando's drop-in replacement, the same four idx files under
  the same names (in their own folder), its own checksums and class names; the
  same options.
* ``binarized_mnist``: the fixed 50k/10k/10k split every PixelCNN/PixelRNN paper
  reports nats on, from ``binarized_mnist_{split}.amat`` or ``.amat.gz``.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from pixelzoo.data.base import ImageDataset, quantize
from pixelzoo.data.download import RemoteFile, resolve
from pixelzoo.errors import ConfigError, DataError

_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_FILES = {
    "train-images": RemoteFile(
        ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"),
        _MNIST_URL + "train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    ),
    "train-labels": RemoteFile(
        ("train-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte"),
        _MNIST_URL + "train-labels-idx1-ubyte.gz",
        "d53e105ee54ea40749a09fcbcd1e9432",
    ),
    "test-images": RemoteFile(
        ("t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte"),
        _MNIST_URL + "t10k-images-idx3-ubyte.gz",
        "9fb629c4189551a2d022fa330f9573f3",
    ),
    "test-labels": RemoteFile(
        ("t10k-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte"),
        _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ),
}

_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_FASHION_MD5 = {  # the official files' (Fashion-MNIST's README)
    "train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
    "test-images": "bef4ecab320f06d8554ea6380940ec79",
    "test-labels": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_FILES = {
    key: RemoteFile(f.names, _FASHION_URL + f.names[0], _FASHION_MD5[key])
    for key, f in MNIST_FILES.items()
}
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")  # fmt: skip

_BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
# The canonical server serves the uncompressed .amat files; these are their MD5s.
_BMNIST_MD5 = {
    "train": "db28b1a6ae0fe70cbd3da91acf46e477",
    "valid": "bf37822a04e94123630de6a7dfd9c9ef",
    "test": "14e41ae11040adba6ab8cb291eda0dd8",
}
BMNIST_SIZES = {"train": 50_000, "valid": 10_000, "test": 10_000}


def read_bytes(path: Path) -> bytes:
    """The whole file, decompressed if it ends in ``.gz``; a truncated gzip is an error."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}); download it again") from None


def read_idx(path: Path, expected_count: int | None = None) -> np.ndarray:
    """Parse an idx file (images ``[N, H, W]`` or labels ``[N]``) and check its size
    (against its header, and ``expected_count`` items where given)."""
    data = read_bytes(path)
    if len(data) < 4:
        raise DataError(f"{path} is truncated: {len(data)} bytes, not an idx file")
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise DataError(f"{path} is not an idx file of unsigned bytes (bad magic number)")
    if len(data) < 4 + 4 * ndim:
        raise DataError(
            f"{path} is truncated: its {len(data)} bytes end inside the idx header of "
            f"{4 + 4 * ndim} bytes"
        )
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    if ndim == 3 and min(dims[1:]) == 0:
        raise DataError(f"{path} is corrupt: it holds images of {dims[1]}x{dims[2]} pixels")
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)) or expected_count not in (None, dims[0]):
        expected = "" if expected_count is None else f", expected {expected_count} items"
        raise DataError(
            f"{path} is truncated or corrupt: header says {dims}, file holds {body.size} "
            f"values{expected}"
        )
    return body.reshape(dims)


def load_mnist(
    split: str,
    root=None,
    *,
    valid_size: int = 10_000,
    binarize: str | None = None,
    levels: int = 256,
    binarize_seed: int = 0,
) -> ImageDataset:
    return load_idx_set("mnist", MNIST_FILES, tuple("0123456789"), split, root, valid_size=valid_size,
                        binarize=binarize, levels=levels, binarize_seed=binarize_seed)  # fmt: skip


def load_fashion_mnist(
    split: str,
    root=None,
    *,
    valid_size: int = 10_000,
    binarize: str | None = None,
    levels: int = 256,
    binarize_seed: int = 0,
) -> ImageDataset:
    return load_idx_set("fashion_mnist", FASHION_FILES, FASHION_CLASSES, split, root,
                        valid_size=valid_size, binarize=binarize, levels=levels,
                        binarize_seed=binarize_seed)  # fmt: skip


def load_idx_set(
    name: str, files: dict, classes: tuple[str, ...], split: str, root, *, valid_size: int,
    binarize: str | None, levels: int, binarize_seed: int,
) -> ImageDataset:  # fmt: skip
    """A labelled grey dataset in MNIST's four idx files (see the module docstring)."""
    if binarize not in (None, "dynamic", "threshold"):
        raise ConfigError(
            f"{name}: binarize must be 'dynamic', 'threshold' or None, got {binarize!r}"
        )
    if split == "valid" and valid_size <= 0:
        raise ConfigError(f"{name}: there is no 'valid' split when valid_size=0")
    prefix = "test" if split == "test" else "train"
    images = read_idx(resolve(name, files[f"{prefix}-images"], root))
    label_path = resolve(name, files[f"{prefix}-labels"], root)
    labels = read_idx(label_path, len(images))
    if labels.ndim != 1 or images.ndim != 3:
        raise DataError(f"{label_path} and its images file are swapped or not {name}'s")
    if labels.size and int(labels.max()) >= len(classes):
        raise DataError(
            f"{label_path} is corrupt: a label is {int(labels.max())}, not a class "
            f"0..{len(classes) - 1}"
        )
    if prefix == "train":
        if valid_size >= len(images):
            raise ConfigError(
                f"{name}: valid_size={valid_size} leaves no training images of {len(images)}"
            )
        keep = len(images) - valid_size
        cut = slice(None, keep) if split == "train" else slice(keep, None)
        images, labels = images[cut], labels[cut]
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, 28, 28) uint8 0..255
    y = torch.from_numpy(labels.astype(np.int64))
    common = dict(labels=y, name=name, split=split, num_classes=len(classes), classes=classes)
    if binarize == "threshold":
        return ImageDataset((x > 127).to(torch.uint8), levels=2, **common)
    if binarize == "dynamic":
        if split == "train":
            return ImageDataset(x, levels=2, dynamic_binarize=True, **common)
        # Evaluation splits are binarized once, with a fixed seed, so that every
        # evaluation of every model sees the same images.
        g = torch.Generator().manual_seed(binarize_seed)
        fixed = (torch.rand(x.shape, generator=g) < x.float() / 255.0).to(torch.uint8)
        return ImageDataset(fixed, levels=2, **common)
    return ImageDataset(quantize(x, levels), levels=levels, **common)


def parse_amat(data: bytes, path: Path, expected_rows: int) -> np.ndarray:
    """Parse ``.amat`` text (one image a line, 784 space-separated 0/1 values)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    is_digit = (raw == ord("0")) | (raw == ord("1"))
    is_sep = (raw == ord(" ")) | (raw == ord("\n")) | (raw == ord("\r")) | (raw == ord("\t"))
    if not np.all(is_digit | is_sep):
        raise DataError(f"{path} is corrupt: it holds characters other than 0, 1 and spaces")
    # Values are single characters, so every digit byte is one value.
    values = raw[is_digit] - ord("0")
    rows = int(np.count_nonzero(raw == ord("\n"))) + (0 if data.endswith(b"\n") else 1)
    if values.size != expected_rows * 784 or rows != expected_rows:
        raise DataError(
            f"{path} is truncated or corrupt: {rows} lines holding {values.size} values, "
            f"expected {expected_rows} lines of 784"
        )
    # Every line must hold exactly 784 values (a line cut short is caught here even
    # when the total happens to match).
    line_id = np.cumsum(raw == ord("\n"))[is_digit]
    if np.any(np.bincount(line_id, minlength=expected_rows)[:expected_rows] != 784):
        raise DataError(f"{path} is corrupt: a line does not hold exactly 784 values")
    return values.reshape(expected_rows, 1, 28, 28)


def load_binarized_mnist(split: str, root=None) -> ImageDataset:
    if split not in BMNIST_SIZES:
        raise ConfigError(f"binarized_mnist has splits train, valid, test; got {split!r}")
    name = f"binarized_mnist_{split}.amat"
    file = RemoteFile((name + ".gz", name), _BMNIST_URL + name, _BMNIST_MD5[split], name)
    path = resolve("binarized_mnist", file, root)
    images = parse_amat(read_bytes(path), path, BMNIST_SIZES[split])
    return ImageDataset(
        torch.from_numpy(images.copy()), levels=2, name="binarized_mnist", split=split
    )
