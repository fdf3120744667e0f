"""The two stacks of the Gated PixelCNN (van den Oord et al. 2016, §2.1-2.2).

* The **vertical stack** sees the rows above and the current row, all columns
  within the kernel's reach: a ``(k//2 + 1) x k`` convolution over rows
  ``i - k//2 .. i``, written as an unmasked convolution of a top-padded map
  (half the work of a masked ``k x k`` kernel). Its output at row ``i`` includes
  row ``i``, so it may only ever be used shifted down one row.
* The **horizontal stack** sees the pixels to the left in the current row and
  the pixel itself: a ``1 x (k//2 + 1)`` convolution of a left-padded map. Only
  its last tap (the pixel itself) is masked, by colour group, A or B exactly as
  PixelCNN's centre tap (``pixelzoo.nn.causal_mask`` with a 1x1 kernel).
* ``pixelzoo.nn.shift_down`` moves a map down one row (zeros enter at the top),
  which is how the vertical stack reaches the horizontal one without seeing the
  current row.
* :func:`gate`: ``tanh(a) * sigmoid(b)`` of the two halves of a ``2p``-map tensor;
  with ``chunks=2`` masks, unit k of both halves sits in the same colour group.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.nn.activations import tanh
from pixelzoo.nn.masked import causal_mask


def gate(x: torch.Tensor) -> torch.Tensor:
    """``[B, 2p, ...]`` -> ``tanh(x[:, :p]) * sigmoid(x[:, p:])`` (eq. 2 of the paper)."""
    f, g = x.chunk(2, dim=1)
    return tanh(f) * torch.sigmoid(g)


class VerticalStackConv(nn.Conv2d):
    """Output at row i depends on input rows ``i - k//2 .. i`` and columns ``j +- k//2``.

    Args:
        in_channels, out_channels: feature counts.
        kernel_size: odd k; the kernel is ``(k//2 + 1) x k``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ConfigError(f"stack kernels must be odd and positive, got {kernel_size}")
        super().__init__(in_channels, out_channels, (kernel_size // 2 + 1, kernel_size))
        self.reach = kernel_size // 2
        self.pad = (self.reach, self.reach, self.reach)  # (left, right, top) zero padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.reach
        return super().forward(F.pad(x, (r, r, r, 0)))  # pad left, right, top


class HorizontalStackConv(nn.Conv2d):
    """Output at (i, j) depends on input (i, j - k//2 .. j - 1) and, by colour group, (i, j).

    Args:
        in_channels, out_channels: feature counts.
        kernel_size: odd k; the kernel is ``1 x (k//2 + 1)``.
        mask_type: ``"A"`` (the first layer: the pixel's own colour group excluded)
            or ``"B"``.
        groups: colour channels (1 grey/binary, 3 RGB).
        chunks: output blocks grouped separately (2 for the gate's two halves).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mask_type: str,
        groups: int = 1,
        *,
        chunks: int = 1,
    ):
        if kernel_size % 2 == 0 or kernel_size < 1:
            raise ConfigError(f"stack kernels must be odd and positive, got {kernel_size}")
        width = kernel_size // 2 + 1
        super().__init__(in_channels, out_channels, (1, width))
        self.pad = (width - 1, 0, 0)  # (left, right, top) zero padding
        self.mask_type = mask_type
        mask = torch.ones(out_channels, in_channels, 1, width)
        mask[..., -1:] = causal_mask(out_channels, in_channels, (1, 1), mask_type, groups, chunks)
        self.register_buffer("mask", mask, persistent=False)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask

    def forward(self, x: torch.Tensor, extra_bias: torch.Tensor | None = None) -> torch.Tensor:
        """The stack's pre-activations; ``extra_bias`` (``[out]``) is added to the bias."""
        x = F.pad(x, (self.kernel_size[1] - 1, 0))  # pad left
        bias = self.bias if extra_bias is None else self.bias + extra_bias
        return F.conv2d(x, self.masked_weight(), bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask={self.mask_type}"
