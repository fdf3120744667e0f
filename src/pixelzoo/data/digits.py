"""scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set).

1,797 grey images with 17 intensity levels (0..16) and labels 0..9. Bundled with
scikit-learn, so no download: the default dataset of the README's main command.
Split by a fixed permutation: 1,258 train / 180 valid / 359 test.
"""

from __future__ import annotations

import torch

from pixelzoo.data.base import ImageDataset, split_indices
from pixelzoo.errors import ConfigError
from pixelzoo.utils.interrupts import import_held


def load_digits(split: str, root=None) -> ImageDataset:
    sk_load_digits = import_held("sklearn.datasets").load_digits

    if split not in ("train", "valid", "test"):
        raise ConfigError(f"digits has splits train, valid, test; got {split!r}")
    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images).round().to(torch.uint8).unsqueeze(1)  # (1797, 1, 8, 8)
    labels = torch.from_numpy(bunch.target).long()
    idx = split_indices(len(images), (0.1, 0.2), seed=0)[split]
    return ImageDataset(
        images[idx],
        levels=17,
        labels=labels[idx],
        name="digits",
        split=split,
        num_classes=10,
        classes=tuple("0123456789"),
    )
