"""Masked convolutions for autoregressive image models (PixelRNN §3.4).

The model's order is raster scan over pixels and, inside a pixel, R -> G -> B.
Feature maps are split into ``groups`` channel groups (one per colour channel) so
that the features of group g at a pixel depend only on the pixels before it and on
colour channels < g (mask A, first layer) or <= g (mask B, later layers) of the
pixel itself.

The mask is a buffer and is multiplied into the weight on every forward pass, so
``weight`` itself is never rewritten: gradients of masked entries are exactly
zero, optimizer state stays honest, and ``torch.compile`` sees a pure function.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError


def channel_groups(n: int, groups: int) -> torch.Tensor:
    """Group index of each of ``n`` channels: contiguous, near-equal blocks.

    For ``n = groups * K`` (the output layer's ``C*K`` logits) channel ``c*K + k``
    is in group ``c``, so reshaping to ``[C, K]`` keeps groups aligned with colours.
    """
    if n < groups:
        raise ValueError(f"{n} channels cannot be split into {groups} colour groups")
    return torch.arange(n) * groups // n


def causal_mask(
    out_channels: int,
    in_channels: int,
    kernel_size: tuple[int, int],
    mask_type: str,
    groups: int = 1,
    chunks: int = 1,
) -> torch.Tensor:
    """Mask ``[out, in, kh, kw]`` that keeps only connections to earlier (sub-)pixels.

    Args:
        mask_type: ``"A"`` (centre excludes the own colour group) or ``"B"``
            (centre includes it).
        groups: number of colour channels whose order R -> G -> B is enforced.
        chunks: the output is ``chunks`` equal blocks stacked along the channels
            (an LSTM's four gates), each split into colour groups on its own, so
            that unit k of every gate belongs to the same group.
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel_size
    mask = torch.zeros(out_channels, in_channels, kh, kw)
    cy, cx = kh // 2, kw // 2
    mask[:, :, :cy, :] = 1  # rows above
    mask[:, :, cy, :cx] = 1  # left in the same row
    if out_channels % chunks:
        raise ValueError(f"{out_channels} output channels do not split into {chunks} chunks")
    g_out = channel_groups(out_channels // chunks, groups).repeat(chunks)[:, None]
    g_in = channel_groups(in_channels, groups)[None, :]
    centre = g_in < g_out if mask_type == "A" else g_in <= g_out
    mask[:, :, cy, cx] = centre.float()
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded convolution whose kernel sees only earlier (sub-)pixels.

    Args:
        in_channels, out_channels: feature counts.
        kernel_size: odd int or (kh, kw), e.g. 7 for PixelCNN's first layer.
        mask_type: ``"A"`` for the first layer, ``"B"`` afterwards.
        groups: colour channels in the data (1 for grey/binary, 3 for RGB).
        chunks: output blocks grouped separately (see :func:`causal_mask`).
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        mask_type: str,
        groups: int = 1,
        *,
        chunks: int = 1,
    ):
        ks = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        if ks[0] % 2 == 0 or ks[1] % 2 == 0 or min(ks) < 1:
            raise ConfigError(f"masked convolutions need odd, positive kernel sizes, got {ks}")
        super().__init__(in_channels, out_channels, ks, padding=(ks[0] // 2, ks[1] // 2))
        self.pad = (ks[1] // 2, ks[1] // 2, ks[0] // 2)  # (left, right, top) zero padding
        self.mask_type = mask_type
        self.colour_groups = groups
        self.register_buffer(
            "mask",
            causal_mask(out_channels, in_channels, ks, mask_type, groups, chunks),
            persistent=False,
        )
        with torch.no_grad():  # start from a masked kernel; fan-in stays that of the full kernel
            self.weight.mul_(self.mask)

    def masked_weight(self) -> torch.Tensor:
        """The kernel as applied: ``weight * mask``, shape ``[out, in, kh, kw]``."""
        return self.weight * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.masked_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask={self.mask_type}, colour_groups={self.colour_groups}"


def masked_output_layers(in_channels: int, hidden: int, out_channels: int, groups: int):
    """PixelRNN Table 1's output stack: ReLU - 1x1 mask B - ReLU - 1x1 mask B.

    Shared by PixelCNN and both PixelRNNs; ``out_channels`` are the likelihood's
    parameters (``groups * K`` logits, in colour order).
    """
    return nn.Sequential(
        nn.ReLU(),
        MaskedConv2d(in_channels, hidden, 1, "B", groups),
        nn.ReLU(),
        MaskedConv2d(hidden, out_channels, 1, "B", groups),
    )
