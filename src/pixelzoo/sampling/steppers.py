"""Steppers: how a sampler evaluates an autoregressive network, one position at a time.

The ancestral sampler (:mod:`pixelzoo.sampling.ancestral`) draws pixels in
raster order and asks a *stepper* for the likelihood's parameters at each draw.
A stepper has three methods:

* ``begin_row(i)``: image rows < i are final;
* ``step(x, i, j, need)``: compute position (i, j) of the partial images ``x``,
  returning the parameters ``[n, P]`` if ``need`` (else only updating caches);
* ``commit(x, i, j)``: pixel (i, j) is final.

:class:`NaiveStepper` runs the whole network for every draw: the reference,
correct for any model. A model with a cached sampler (Ramachandran, Le Paine,
Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson, Campbell, Huang 2017,
"Fast Generation for Convolutional Autoregressive Models") returns its own
stepper from ``model.cached_stepper(x, cond)``; it lives beside the network it
mirrors, in the model's file. The naive sampler recomputes millions of
activations that did not change, but in a causal network every activation
depends on a fixed set of earlier pixels: once those are drawn, its value is
final. A cached stepper computes each activation **once**, at the step where it
becomes final, into a per-layer :class:`Buffer` (the paper's per-layer cache)
from which later steps read their convolution windows.

Every buffer is zero-padded as the layer's convolution pads its input, so a
window is a plain slice and the arithmetic is the full forward pass's,
position by position. Parameters agree with the naive sampler's to rounding
(they are equal to ~1e-15 in float64, as tested), hence so do the samples.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class NaiveStepper:
    """One full forward pass per draw (the reference sampler)."""

    def __init__(self, model, x: torch.Tensor, cond):
        self.model, self.cond = model, cond

    def begin_row(self, i: int) -> None:
        pass

    def step(self, x: torch.Tensor, i: int, j: int, need: bool):
        return self.model(x, self.cond)[:, :, i, j] if need else None

    def commit(self, x: torch.Tensor, i: int, j: int) -> None:
        pass


def conv_weight(conv) -> torch.Tensor:
    """The kernel a convolution applies (masked, or weight-normalised, as in its forward)."""
    return conv.masked_weight() if hasattr(conv, "masked_weight") else conv.weight


class Buffer:
    """One layer's input map, zero-padded for the convolutions that read it.

    Stored channels-last, ``[n, H + pads, W + pads, C]``, so that a convolution's
    window at one position is a small, nearly contiguous block.

    Args:
        like: a tensor giving dtype and device.
        n, channels, size: batch, feature maps and ``(H, W)``.
        convs: the convolutions that read this map; each has ``pad = (left, right,
            top)`` (the zero padding of its forward pass), a kernel size and a stride.
    """

    def __init__(self, like: torch.Tensor, n: int, channels: int, size, convs=()):
        self.size = tuple(size)
        pads = [conv.pad for conv in convs] or [(0, 0, 0)]
        self.left = max(p[0] for p in pads)
        self.top = max(p[2] for p in pads)
        right = max(p[1] for p in pads)
        bottom = max([c.kernel_size[0] - 1 - c.pad[2] for c in convs] + [0])
        h, w = self.size
        self.data = like.new_zeros(n, self.top + h + bottom, self.left + w + right, channels)
        self.weights = {id(conv): conv_weight(conv) for conv in convs}
        # At one position a convolution is a matrix product with the flattened
        # (kh, kw, C) window.
        self.matrices = {
            key: wt.permute(0, 2, 3, 1).flatten(1).t().contiguous()
            for key, wt in self.weights.items()
        }

    def put(self, value: torch.Tensor, i: int, j: int | None = None) -> None:
        """Store ``value`` ``[n, C, 1, W]`` as row i, or ``[n, C, 1, 1]`` as position (i, j)."""
        if j is None:
            row = value[:, :, 0].transpose(1, 2)  # (n, W, C)
            self.data[:, self.top + i, self.left : self.left + self.size[1]] = row
        else:
            self.data[:, self.top + i, self.left + j] = value[:, :, 0, 0]

    def at(self, i: int, j: int | None = None) -> torch.Tensor:
        """Row i ``[n, C, 1, W]`` or position (i, j) ``[n, C, 1, 1]``."""
        if j is None:
            row = self.data[
                :, self.top + i : self.top + i + 1, self.left : self.left + self.size[1]
            ]
            return row.permute(0, 3, 1, 2)
        return self.data[:, self.top + i, self.left + j][:, :, None, None]

    def conv(self, conv, i: int, j: int | None = None) -> torch.Tensor:
        """``conv``'s output at row i ``[n, out, 1, W']`` or at position (i, j) ``[n, out, 1, 1]``."""
        left, right, top = conv.pad
        kh, kw = conv.kernel_size
        s = conv.stride[0]
        r0 = self.top - top + s * i
        rows = self.data[:, r0 : r0 + kh]  # (n, kh, W + pads, C)
        if j is None:
            window = rows[:, :, self.left - left : self.left + self.size[1] + right]
            window = window.permute(0, 3, 1, 2)
            return F.conv2d(window, self.weights[id(conv)], conv.bias, stride=conv.stride)
        c0 = self.left - left + s * j
        flat = rows[:, :, c0 : c0 + kw].reshape(len(rows), -1)  # (n, kh kw C)
        m = self.matrices[id(conv)]
        out = flat @ m if conv.bias is None else torch.addmm(conv.bias, flat, m)
        return out[:, :, None, None]


def pixel_input(model, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """Pixel (i, j) of integer images as the network's input ``[n, C, 1, 1]``."""
    return model.embed(x[:, :, i : i + 1, j : j + 1]).to(model.dtype)


def like_model(model, x: torch.Tensor) -> torch.Tensor:
    """An empty tensor with the model's dtype on ``x``'s device (for :class:`Buffer`)."""
    return torch.empty(0, dtype=model.dtype, device=x.device)


def at(t: torch.Tensor, i: int, j: int | None = None) -> torch.Tensor:
    """A per-image term ``[n, C, 1, 1]`` as is, or row i / position (i, j) of a map."""
    if t.shape[-2:] == (1, 1):
        return t
    row = t[:, :, i : i + 1]
    return row if j is None else row[..., j : j + 1]
