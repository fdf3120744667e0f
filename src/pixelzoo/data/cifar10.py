"""CIFAR-10 (Krizhevsky 2009): 32x32 RGB, 50k train / 10k test, 10 classes.

Reads either official layout from ``root`` (or the cache, downloading the python
version):

* python version: ``cifar-10-batches-py/data_batch_{1..5}`` and ``test_batch``,
  pickled dicts with ``b"data"`` (uint8 ``[10000, 3072]``, channel-major) and
  ``b"labels"``. They are read with a restricted unpickler that accepts only the
  builtin containers and numpy arrays, so a tampered file cannot run code.
* binary version: ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and
  ``test_batch.bin``, records of 1 label byte + 3072 pixel bytes.

The validation split is the last ``valid_size`` (default 5,000) training images.
"""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from pixelzoo.data.base import ImageDataset, quantize
from pixelzoo.data.download import RemoteFile, cache_dir, resolve
from pixelzoo.errors import ConfigError, DataError

ARCHIVE = RemoteFile(
    ("cifar-10-python.tar.gz",),
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
)
# The label order of batches.meta (label k is CLASSES[k]).
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
RECORD = 1 + 3 * 32 * 32


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles only what the CIFAR batches contain: dicts, lists, bytes, numpy arrays."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("builtins", "dict"),
        ("builtins", "list"),
        ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 store bytes
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_pickle_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    def bad(why: str):
        return DataError(f"{path} is not a valid CIFAR-10 python batch ({why})")

    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except OSError as e:
        raise DataError(f"{path} cannot be read ({e.strerror})") from None
    except Exception as e:  # noqa: BLE001 - the file is untrusted: any failure is "not a batch"
        raise bad(f"{type(e).__name__}: {e}") from None
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise bad("not a dict with b'data' and b'labels'")
    data, labels = d[b"data"], d[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        raise bad("b'data' is not a uint8 array")
    if not isinstance(labels, (list, np.ndarray)) or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels
    ):
        raise bad("b'labels' is not a list of whole numbers")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path} is corrupt: data {data.shape}, {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise DataError(
            f"{path} is corrupt: a label is outside 0..9 ({labels.min()}..{labels.max()})"
        )
    return data.reshape(-1, 3, 32, 32), labels


def _read_binary_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % RECORD:
        raise DataError(
            f"{path} is truncated or corrupt: {raw.size} bytes is not a whole number of "
            f"{RECORD}-byte CIFAR-10 records"
        )
    rec = raw.reshape(-1, RECORD)
    if rec[:, 0].max() > 9:
        raise DataError(f"{path} is corrupt: a label byte is above 9")
    return rec[:, 1:].reshape(-1, 3, 32, 32), rec[:, 0].astype(np.int64)


def _find_layout(root) -> tuple[str, Path]:
    """('py'|'bin', folder) holding the batches; downloads the python archive if needed."""
    candidates = []
    if root is not None:
        root = Path(root)
        candidates = [root, root / "cifar-10-batches-py", root / "cifar-10-batches-bin"]
    else:
        candidates = [cache_dir() / "cifar10" / "cifar-10-batches-py"]
    for folder in candidates:
        if (folder / "test_batch").is_file():
            return "py", folder
        if (folder / "test_batch.bin").is_file():
            return "bin", folder
    if root is not None:
        raise DataError(
            f"dataset 'cifar10': {root} holds neither cifar-10-batches-py/ nor "
            f"cifar-10-batches-bin/; download {ARCHIVE.url} and extract it there"
        )
    archive = resolve("cifar10", ARCHIVE, None)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(archive.parent, filter="data")
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{archive} is corrupt ({e}); delete it and try again") from None
    return "py", archive.parent / "cifar-10-batches-py"


def load_cifar10(
    split: str, root=None, *, valid_size: int = 5_000, levels: int = 256
) -> ImageDataset:
    if split not in ("train", "valid", "test"):
        raise ConfigError(f"cifar10 has splits train, valid, test; got {split!r}")
    if split == "valid" and valid_size <= 0:
        raise ConfigError("cifar10: there is no 'valid' split when valid_size=0")
    layout, folder = _find_layout(root)
    names = ["test_batch"] if split == "test" else TRAIN_BATCHES
    read = _read_pickle_batch if layout == "py" else _read_binary_batch
    suffix = "" if layout == "py" else ".bin"
    parts = []
    for n in names:
        path = folder / (n + suffix)
        if not path.is_file():
            raise DataError(f"dataset 'cifar10': {path} is missing")
        parts.append(read(path))
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if split != "test":
        cut = (
            slice(None, len(x) - valid_size)
            if split == "train"
            else slice(len(x) - valid_size, None)
        )
        x, y = x[cut], y[cut]
    images = quantize(torch.from_numpy(np.ascontiguousarray(x)), levels)
    return ImageDataset(
        images,
        levels=levels,
        labels=torch.from_numpy(y),
        name="cifar10",
        split=split,
        num_classes=10,
        classes=CLASSES,
    )
