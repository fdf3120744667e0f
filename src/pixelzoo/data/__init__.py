"""Datasets: ``load(name, split, root=None, **options)`` -> :class:`ImageDataset`.

Every loader returns integer images ``[N, C, H, W]`` in ``0..levels-1`` (and labels
where the data has them). ``root`` is a folder holding the dataset's files (the
CLI's ``--data-dir``); without it files come from the cache, downloaded on first use.
"""

from __future__ import annotations

import inspect

from pixelzoo.data.base import ImageDataset, quantize, to_uint8, to_unit
from pixelzoo.data.celeba import load_celeba
from pixelzoo.data.cifar10 import load_cifar10
from pixelzoo.data.digits import load_digits
from pixelzoo.data.folder import load_folder
from pixelzoo.data.imagenet import load_imagenet
from pixelzoo.data.mnist import load_binarized_mnist, load_fashion_mnist, load_mnist
from pixelzoo.data.stacked import load_stacked_mnist
from pixelzoo.data.svhn import load_svhn
from pixelzoo.errors import ConfigError

_LOADERS = {
    "digits": load_digits,
    "binarized_mnist": load_binarized_mnist,
    "mnist": load_mnist,
    "fashion_mnist": load_fashion_mnist,
    "stacked_mnist": load_stacked_mnist,
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "celeba": load_celeba,
    "imagenet": load_imagenet,
    "folder": load_folder,
}
SPLITS = ("train", "valid", "test")


def names() -> list[str]:
    return sorted(_LOADERS)


def options(name: str) -> list[str]:
    """Keyword options a dataset accepts (e.g. ``binarize`` for mnist)."""
    loader = _get(name)
    return [
        p.name for p in inspect.signature(loader).parameters.values() if p.kind is p.KEYWORD_ONLY
    ]


def _get(name: str):
    if name not in _LOADERS:
        raise ConfigError(f"unknown dataset {name!r}; valid names: {', '.join(names())}")
    return _LOADERS[name]


def load(name: str, split: str, root=None, **opts) -> ImageDataset:
    """Load one split of a dataset.

    Args:
        name: one of :func:`names`.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        root: folder holding the dataset files; ``None`` uses the download cache.
        **opts: dataset options, see :func:`options`.
    """
    loader = _get(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    unknown = set(opts) - set(options(name))
    if unknown:
        raise ConfigError(
            f"dataset {name!r} has no option {sorted(unknown)[0]!r}; valid options: "
            f"{', '.join(options(name)) or 'none'}"
        )
    return loader(split, root, **opts)


__all__ = ["ImageDataset", "load", "names", "options", "quantize", "to_uint8", "to_unit"]
