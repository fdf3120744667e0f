"""Pieces of the two-dimensional LSTMs of PixelRNN (van den Oord et al. 2016, §3.1-3.2).

* :func:`lstm_update` is equation (3) of the paper: one step of an LSTM from the
  summed input-to-state and state-to-state pre-activations.
* :func:`skew` / :func:`unskew` turn the diagonals of an image into columns and
  back, so that the Diagonal BiLSTM can process a whole diagonal per step.
* :func:`shift_down` moves a map down by one row (zeros enter at the top).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixelzoo.nn.activations import tanh


def lstm_update(
    gates: torch.Tensor, c_prev: torch.Tensor, dim: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LSTM step (PixelRNN eq. 3).

    Args:
        gates: pre-activations ``[..., 4h, ...]`` stacked along ``dim`` in the
            paper's order (o, f, i, g).
        c_prev: the previous cell state ``[..., h, ...]``.

    Returns:
        ``(h, c)``: ``c = sigmoid(f) * c_prev + sigmoid(i) * tanh(g)`` and
        ``h = sigmoid(o) * tanh(c)``.
    """
    h = gates.shape[dim] // 4
    o, f, i = torch.sigmoid(gates.narrow(dim, 0, 3 * h)).chunk(3, dim=dim)
    c = f * c_prev + i * tanh(gates.narrow(dim, 3 * h, h))
    return o * tanh(c), c


def skew(x: torch.Tensor) -> torch.Tensor:
    """``[..., H, W] -> [..., H, W + H - 1]``: row ``r`` shifted right by ``r``, zeros elsewhere.

    Pixel ``(r, j)`` lands in column ``r + j``, so each column of the result
    holds one diagonal of the image. Done by padding every row to ``W + H``,
    flattening and re-reading the rows one element shorter: no copy per row.
    """
    h, w = x.shape[-2:]
    flat = F.pad(x, (0, h)).flatten(-2)[..., : h * (w + h - 1)]
    return flat.unflatten(-1, (h, w + h - 1))


def unskew(x: torch.Tensor, width: int) -> torch.Tensor:
    """Inverse of :func:`skew`: ``[..., H, width + H - 1] -> [..., H, width]``."""
    h = x.shape[-2]
    if x.shape[-1] != width + h - 1:
        raise ValueError(
            f"a skewed map of height {h} and width {width} has {width + h - 1} columns"
        )
    flat = F.pad(x.flatten(-2), (0, h))
    return flat.unflatten(-1, (h, width + h))[..., :width]


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """``[..., H, W]`` moved down one row: row 0 is zeros, the last row drops out."""
    return F.pad(x, (0, 0, 1, -1))  # one row of zeros on top, the last row cropped
