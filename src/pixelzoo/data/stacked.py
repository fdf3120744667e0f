"""Stacked MNIST (Metz et al. 2017, Srivastava et al. 2017): three MNIST digits as RGB channels.

Each image stacks three MNIST images drawn independently and uniformly from the
same split, so the data has 10^3 = 1000 modes (the digit triples), all about
equally likely. The label is the triple as a number ``100 d_R + 10 d_G + d_B``.
The triples are drawn from a fixed generator per split, so the dataset is the
same on every load. Options: ``size`` (images per split, default: the split's
size) and ``levels`` (quantize the 256 grey levels).
"""

from __future__ import annotations

import torch

from pixelzoo.data.base import ImageDataset
from pixelzoo.errors import ConfigError

_SEEDS = {"train": 1, "valid": 2, "test": 3}


def stack_channels(ds: ImageDataset, size: int, channels: int = 3, seed: int = 0) -> ImageDataset:
    """``size`` images whose channels are ``channels`` random one-channel images of ``ds``."""
    if ds.image_shape[0] != 1 or ds.labels is None:
        raise ConfigError("stacking needs a labelled one-channel dataset")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(ds), (size, channels), generator=g)
    images = ds.images[idx].squeeze(2)  # [size, channels, H, W]
    classes = ds.num_classes or int(ds.labels.max()) + 1
    place = classes ** torch.arange(channels - 1, -1, -1)
    labels = (ds.labels[idx] * place).sum(1)
    return ImageDataset(
        images.contiguous(),
        ds.levels,
        labels=labels,
        name=f"stacked_{ds.name}",
        split=ds.split,
        num_classes=classes**channels,
    )


def load_stacked_mnist(
    split: str, root=None, *, size: int | None = None, levels: int = 256
) -> ImageDataset:
    from pixelzoo.data.mnist import load_mnist

    base = load_mnist(split, root, levels=levels)
    if size is not None and size < 1:
        raise ConfigError(f"stacked_mnist size must be positive, got {size}")
    return stack_channels(base, size or len(base), seed=_SEEDS[split])
