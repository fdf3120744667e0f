"""SVHN, the Street View House Numbers (Netzer, Wang, Coates, Bissacco, Wu, Ng 2011),
cropped-digits format: 32x32 RGB, 73,257 train / 26,032 test (/ 531,131 extra), 10 classes.

Reads the official MATLAB files ``train_32x32.mat``, ``test_32x32.mat`` (and
``extra_32x32.mat`` with ``extra=True``) from ``root``, or the cache, downloading
them from the canonical server with their published MD5s. Each holds ``X``
(uint8 ``[32, 32, 3, N]``) and ``y`` (``[N, 1]``, digits 1..10 where 10 is the
digit 0); labels here are the digits 0..9. The validation split is the last
``valid_size`` (default 5,000) training images; ``extra=True`` appends the extra
images to the training split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pixelzoo.data.base import ImageDataset, quantize
from pixelzoo.data.download import RemoteFile, resolve
from pixelzoo.errors import ConfigError, DataError

_URL = "http://ufldl.stanford.edu/housenumbers/"
FILES = {
    "train": RemoteFile(("train_32x32.mat",), _URL + "train_32x32.mat",
                        "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": RemoteFile(("test_32x32.mat",), _URL + "test_32x32.mat",
                       "eb5a983be6a315427106f1b164d9cef3"),
    "extra": RemoteFile(("extra_32x32.mat",), _URL + "extra_32x32.mat",
                        "a93ce644f1a588dc4d68dda5feec44a7"),
}  # fmt: skip
CLASSES = tuple("0123456789")


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 [N, 3, 32, 32], labels int64 [N] in 0..9)`` of one SVHN .mat file."""
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except (MatReadError, ValueError, OSError, TypeError, EOFError) as e:
        raise DataError(f"{path} is corrupt or truncated ({e}); download it again") from None
    x, y = mat.get("X"), mat.get("y")
    if x is None or y is None:
        raise DataError(f"{path} is not an SVHN file: it has no 'X' and 'y' arrays")
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3):
        raise DataError(
            f"{path} is not an SVHN file: 'X' is {x.dtype} {x.shape}, not uint8 [32, 32, 3, N]"
        )
    y = np.asarray(y).reshape(-1)
    if len(y) != x.shape[3]:
        raise DataError(f"{path} is corrupt: {len(y)} labels for {x.shape[3]} images")
    if len(y) and (y.min() < 1 or y.max() > 10):
        raise DataError(
            f"{path} is corrupt: a label is {int(y.min() if y.min() < 1 else y.max())}, not 1..10"
        )
    images = np.ascontiguousarray(x.transpose(3, 2, 0, 1))  # [N, C, H, W]
    return images, (y.astype(np.int64) % 10)  # 10 is the digit 0


def load_svhn(
    split: str, root=None, *, valid_size: int = 5_000, extra: bool = False, levels: int = 256
) -> ImageDataset:
    if not 2 <= levels <= 256:
        raise ConfigError(f"svhn: levels must be in 2..256, got {levels}")
    if split == "valid" and valid_size <= 0:
        raise ConfigError("svhn: there is no 'valid' split when valid_size=0")
    if split == "test":
        x, y = read_mat(resolve("svhn", FILES["test"], root))
    else:
        x, y = read_mat(resolve("svhn", FILES["train"], root))
        if valid_size >= len(x):
            raise ConfigError(
                f"svhn: valid_size={valid_size} leaves no training images of {len(x)}"
            )
        keep = len(x) - valid_size
        x, y = (x[:keep], y[:keep]) if split == "train" else (x[keep:], y[keep:])
        if split == "train" and extra:
            ex, ey = read_mat(resolve("svhn", FILES["extra"], root))
            x, y = np.concatenate([x, ex]), np.concatenate([y, ey])
    return ImageDataset(
        quantize(torch.from_numpy(x), levels), levels=levels, labels=torch.from_numpy(y),
        name="svhn", split=split, classes=CLASSES,
    )  # fmt: skip
