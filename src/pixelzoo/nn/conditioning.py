"""Conditioning inputs h for conditional PixelCNNs (van den Oord et al. 2016, §2.3).

A model is conditioned on one of:

* a class label ``y [B]`` (int): h is its one-hot vector, so ``V^T h`` is a
  learned vector per class;
* any vector ``h [B, D]`` (float), e.g. a code from an encoder;
* a spatial map ``h [B, D, h, w]`` (float): a learned up-sampling network ``m``
  maps it to ``s = m(h)`` of the image's height and width (location-dependent).

:class:`ConditionInput` turns ``cond`` into the network-side h (a vector or a
map); :func:`cond_projection` makes the per-layer ``V`` that adds it to a layer's
pre-activations: a linear map for vectors (the same at every location), a 1x1
convolution for maps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SpatialUpsampler(nn.Module):
    """m: ``[B, D, h, w]`` -> ``[B, maps, H, W]``.

    A 3x3 convolution, then stride-2 transposed convolutions while doubling stays
    within the target size, a bilinear resize to the exact size if still needed,
    and a last 3x3 convolution.
    """

    def __init__(self, cond_shape: tuple[int, int, int], size: tuple[int, int], maps: int):
        super().__init__()
        d, h, w = cond_shape
        self.size = tuple(size)
        layers: list[nn.Module] = [nn.Conv2d(d, maps, 3, padding=1), nn.ReLU()]
        while 2 * h <= size[0] and 2 * w <= size[1]:
            layers += [nn.ConvTranspose2d(maps, maps, 4, stride=2, padding=1), nn.ReLU()]
            h, w = 2 * h, 2 * w
        self.up = nn.Sequential(*layers)
        self.out = nn.Conv2d(maps, maps, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        s = self.up(h)
        if tuple(s.shape[-2:]) != self.size:
            s = F.interpolate(s, size=self.size, mode="bilinear", align_corners=False)
        return self.out(s)


class ConditionInput(nn.Module):
    """``cond`` -> h: one-hot labels, the vector itself, or ``m(cond)``.

    Args:
        num_classes: N for class labels (``cond`` is ``[B]`` int), else None.
        cond_shape: ``(D,)`` or ``(D, h, w)`` for float conditioning, else None.
        image_size: ``(H, W)`` of the images (the size of ``m``'s output).
        maps: feature maps of ``m`` (spatial conditioning only).
    """

    def __init__(
        self,
        num_classes: int | None,
        cond_shape: tuple[int, ...] | None,
        image_size: tuple[int, int],
        maps: int = 32,
    ):
        super().__init__()
        # Empty, but moves with .to() / .double(): h comes out in the model's dtype.
        self.register_buffer("dtype_probe", torch.empty(0), persistent=False)
        self.num_classes = num_classes
        self.spatial = cond_shape is not None and len(cond_shape) == 3
        if num_classes is not None:
            self.features = num_classes
        elif self.spatial:
            self.features = maps
            self.upsample = SpatialUpsampler(tuple(cond_shape), image_size, maps)
        else:
            self.features = int(cond_shape[0])

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        dtype = self.dtype_probe.dtype
        if self.num_classes is not None:
            return F.one_hot(cond.long(), self.num_classes).to(dtype)  # (B, N)
        if self.spatial:
            return self.upsample(cond.to(dtype))  # (B, maps, H, W)
        return cond.to(dtype)  # (B, D)


class VectorProjection(nn.Linear):
    """``V^T h``: ``[B, D]`` -> ``[B, out, 1, 1]``, added at every location."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return super().forward(h)[:, :, None, None]


def cond_projection(cond: ConditionInput, out_channels: int) -> nn.Module:
    """The per-layer ``V`` for ``cond``'s h: linear for vectors, 1x1 convolution for maps."""
    if cond.spatial:
        return nn.Conv2d(cond.features, out_channels, 1)
    return VectorProjection(cond.features, out_channels)
