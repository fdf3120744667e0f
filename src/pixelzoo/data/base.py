"""The dataset type every loader returns, and quantization helpers.

All supported datasets fit in memory (binarized MNIST is 39 MB as uint8, CIFAR-10
150 MB), so a dataset is a uint8 tensor of images plus optional labels. The
trainer draws batches by indexing that tensor, which is much faster on a CPU than
a per-item ``DataLoader``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from pixelzoo.errors import DataError, InputError


@dataclass
class ImageDataset(torch.utils.data.Dataset):
    """Integer images ``[N, C, H, W]`` with values in ``0..levels-1``.

    Args:
        images: uint8 tensor ``[N, C, H, W]``.
        levels: number of intensity levels K (2 for binary data).
        labels: optional int64 tensor ``[N]`` of class labels.
        name: dataset name, e.g. ``"binarized_mnist"``.
        split: ``"train"``, ``"valid"`` or ``"test"``.
        num_classes: number of label classes (when labels are present).
        classes: the class names in label order (label k is ``classes[k]``), where
            the data names them.
        dynamic_binarize: if True, ``images`` hold 8-bit grey values and every
            batch drawn with :meth:`get_batch` is a fresh Bernoulli sample
            (dynamic binarization); ``levels`` is then 2.
    """

    images: torch.Tensor
    levels: int
    labels: torch.Tensor | None = None
    name: str = ""
    split: str = ""
    num_classes: int | None = None
    dynamic_binarize: bool = False
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"dataset {self.name!r}: images must be a uint8 tensor [N, C, H, W], "
                f"got {self.images.dtype} with shape {tuple(self.images.shape)}"
            )
        if self.labels is not None and len(self.labels) != len(self.images):
            raise DataError(
                f"dataset {self.name!r}: {len(self.labels)} labels for {len(self.images)} images"
            )
        if self.classes is not None:
            self.classes = tuple(self.classes)
            if self.num_classes is None:
                self.num_classes = len(self.classes)
            if len(self.classes) != self.num_classes:
                raise DataError(
                    f"dataset {self.name!r}: {len(self.classes)} class names for "
                    f"{self.num_classes} classes"
                )
        top = 255 if self.dynamic_binarize else self.levels - 1
        if len(self.images) and int(self.images.max()) > top:
            raise DataError(
                f"dataset {self.name!r} ({self.split}): pixel value {int(self.images.max())} "
                f"is outside 0..{top}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        x = self.get_batch(torch.tensor([i]))[0][0]
        if self.labels is None:
            return x
        return x, int(self.labels[i])

    def subset(self, index: torch.Tensor) -> ImageDataset:
        """The images (and labels) at ``index``, with this dataset's metadata."""
        labels = None if self.labels is None else self.labels[index]
        return dataclasses.replace(self, images=self.images[index], labels=labels)

    def fixed_subset(self, n: int, seed: int) -> ImageDataset:
        """The first ``n`` images of a permutation drawn from ``seed``, in index order:
        the same images for the same seed, and a larger ``n`` only adds images."""
        pick = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        return self.subset(pick[:n].sort().values)

    def get_batch(
        self, index: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images ``[b, C, H, W]`` (int64) and labels ``[b]`` (or None) at ``index``.

        With dynamic binarization, pixel values are resampled from ``generator``.
        """
        x = self.images[index]
        if self.dynamic_binarize:
            u = torch.rand(x.shape, generator=generator)
            x = u < x.float() / 255.0
        y = None if self.labels is None else self.labels[index]
        return x.long(), y


def quantize(x: torch.Tensor, levels: int, from_levels: int = 256) -> torch.Tensor:
    """Map integer values in ``0..from_levels-1`` to ``0..levels-1`` (equal-width bins)."""
    if levels == from_levels:
        return x
    return (x.long() * levels // from_levels).to(torch.uint8)


def to_unit(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer images in ``0..levels-1`` -> float in ``[-1, 1]`` (for network inputs)."""
    return x.float() * (2.0 / (levels - 1)) - 1.0


def to_uint8(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Integer images in ``0..levels-1`` -> 8-bit intensities ``0..255`` (for viewing)."""
    return (x.long() * 255 // (levels - 1)).to(torch.uint8)


def split_indices(n: int, fractions: tuple[float, float], seed: int = 0):
    """A fixed random partition of ``range(n)`` into train / valid / test indices.

    ``fractions`` are (valid, test). The permutation uses its own generator so the
    split never depends on the global RNG.
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(n, generator=g)
    n_valid, n_test = round(n * fractions[0]), round(n * fractions[1])
    return {
        "test": perm[:n_test].sort().values,
        "valid": perm[n_test : n_test + n_valid].sort().values,
        "train": perm[n_test + n_valid :].sort().values,
    }


def check_image_set(x, name: str) -> None:
    """Raise :class:`InputError` unless ``x`` is a batch of integer images ``[N, C, H, W]``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.is_floating_point():
        what = f"{x.dtype} {list(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise InputError(f"{name} must be integer images [N, C, H, W], got {what}")
