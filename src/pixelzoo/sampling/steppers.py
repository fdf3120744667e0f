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

Small models are bound by the number of operations per step, not by their
arithmetic (PixelCNN's ``binarized_mnist_cpu`` has 15 blocks of 16 maps): each
eager operation costs a few microseconds to launch whatever its size. So the
per-position work is done on ``[n, C]`` rows with as few operations as possible:
a masked convolution's input is a :class:`MaskedConvBuffer` (its rows above once
per image row, one matrix product per step, through views made once), a 1x1
layer a :class:`Pointwise` matrix product. ``benchmarks/sampling.py`` measures it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# ``relu(bias + a @ b)`` as one operation (PyTorch's fused "addmm + activation", a private
# but long-standing op; bit-identical to addmm then relu_): one dispatch instead of two
# on the small presets' per-step path. Falls back to the two where a torch lacks it.
_addmm_activation = getattr(torch, "_addmm_activation", None)


def addmm_relu(bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, out: torch.Tensor):
    """``out = relu(bias + a @ b)``, returning ``out``."""
    if _addmm_activation is not None:
        return _addmm_activation(bias, a, b, out=out)
    return torch.addmm(bias, a, b, out=out).relu_()


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
        if j is not None:
            return self.product(conv, i, j)[:, :, None, None]
        left, right, top = conv.pad
        r0 = self.top - top + conv.stride[0] * i
        rows = self.data[:, r0 : r0 + conv.kernel_size[0]]  # (n, kh, W + pads, C)
        window = rows[:, :, self.left - left : self.left + self.size[1] + right]
        window = window.permute(0, 3, 1, 2)
        return F.conv2d(window, self.weights[id(conv)], conv.bias, stride=conv.stride)

    def product(self, conv, i: int, j: int) -> torch.Tensor:
        """``conv``'s output at position (i, j) as ``[n, out]``: one matrix product."""
        left, _, top = conv.pad
        kh, kw = conv.kernel_size
        s = conv.stride[0]
        r0 = self.top - top + s * i
        c0 = self.left - left + s * j
        flat = self.data[:, r0 : r0 + kh, c0 : c0 + kw].reshape(len(self.data), -1)
        m = self.matrices[id(conv)]  # (kh kw C, out)
        return flat @ m if conv.bias is None else torch.addmm(conv.bias, flat, m)


class MaskedConvBuffer:
    """The input map of one causally masked convolution, read in two parts.

    A mask-A/B kernel (:func:`pixelzoo.nn.causal_mask`, or a horizontal stack's
    ``1 x (k//2 + 1)``) is zero below its centre row and right of its centre, so
    its output at (i, j) is

    * the kernel rows *above* the centre applied to image rows i - top .. i - 1,
      final once row i begins: one convolution per image row for all its
      positions (:meth:`begin_row`), plus
    * the centre row applied to positions j - left .. j of row i: one matrix
      product at the step (:meth:`product`).

    The map is stored ``[top + H, n, left + W + right, C]``: one row of all images
    together, so that the positions j - left .. j are one ``[n, (left + 1) C]``
    matrix that a product reads in place (a strided view, no copy). The views
    are made once, at the start: the small presets are bound by the number of
    operations per step, and an indexing expression costs as much as a product.
    Only for causally masked kernels (the zero parts are skipped, not checked).
    """

    def __init__(self, like: torch.Tensor, n: int, channels: int, size, conv):
        h, w = size
        left, right, self.top = conv.pad
        self.data = like.new_zeros(self.top + h, n, left + w + right, channels)
        kernel = conv_weight(conv)  # (out, C, kh, kw)
        self.above = kernel[:, :, : self.top].contiguous()
        self.bias = conv.bias
        # (left + 1) C rows in the window's order: position, then channel.
        centre = kernel[:, :, self.top, : left + 1]  # (out, C, left + 1)
        self.matrix = centre.permute(2, 1, 0).reshape(-1, conv.out_channels).contiguous()
        self.from_above = like.new_zeros(w, n, conv.out_channels)  # (W, n, out)
        if self.bias is not None:
            self.from_above += self.bias  # rows above the image are zero padding
        self.above_at = list(self.from_above.unbind(0))
        rows = self.data[self.top :]
        self.cells = [list(row[:, left : left + w].unbind(1)) for row in rows]  # [i][j]: (n, C)
        self.windows = [
            [row[:, j : j + left + 1].flatten(1) for j in range(w)] for row in rows
        ]  # [i][j]: (n, (left + 1) C), positions j - left .. j

    def begin_row(self, i: int) -> None:
        """Image rows < i are final: the kernel's upper rows for every position of row i."""
        if self.top == 0 or i == 0:
            return  # nothing above but zero padding: the bias alone, set at the start
        rows = self.data[i : i + self.top].permute(1, 3, 0, 2)  # (n, C, top, left + W + right)
        out = F.conv2d(rows, self.above, self.bias)  # (n, out, 1, W)
        self.from_above.copy_(out[:, :, 0].permute(2, 0, 1))

    def cell(self, i: int, j: int) -> torch.Tensor:
        """Position (i, j) of the map, ``[n, C]`` (a view to read or write)."""
        return self.cells[i][j]

    def window(self, i: int, j: int) -> torch.Tensor:
        """Positions j - left .. j of row i, ``[n, (left + 1) C]``, for :attr:`matrix` (a view)."""
        return self.windows[i][j]

    def product(self, i: int, j: int) -> torch.Tensor:
        """The convolution's output at (i, j), ``[n, out]`` (rows < i as of :meth:`begin_row`)."""
        return torch.addmm(self.above_at[j], self.windows[i][j], self.matrix)

    def product_relu(self, i: int, j: int, out: torch.Tensor) -> torch.Tensor:
        """``relu`` of :meth:`product`, written into ``out`` ``[n, out]``."""
        return addmm_relu(self.above_at[j], self.windows[i][j], self.matrix, out)


class Pointwise:
    """A 1x1 convolution (masked or not) at one position: ``[n, in] -> [n, out]``.

    Small models are bound by the cost of each operation at each step, not by
    arithmetic: a ``conv2d`` on a 1x1 map spends tens of microseconds setting up,
    a matrix product on ``[n, in]`` rows a few. Steppers that work on such rows
    turn each 1x1 layer into one of these, its kernel read once.
    """

    def __init__(self, conv):
        self.matrix = conv_weight(conv)[:, :, 0, 0].t().contiguous()  # (in, out)
        self.bias = conv.bias

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return v @ self.matrix if self.bias is None else torch.addmm(self.bias, v, self.matrix)

    def into(self, out: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The layer's output at ``v`` written into ``out`` (a buffer's cell)."""
        if self.bias is None:
            return torch.mm(v, self.matrix, out=out)
        return torch.addmm(self.bias, v, self.matrix, out=out)

    def relu_into(self, out: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``relu`` of the layer's output at ``v``, written into ``out``."""
        if self.bias is None:
            return torch.mm(v, self.matrix, out=out).relu_()
        return addmm_relu(self.bias, v, self.matrix, out)

    def add_into(self, h: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``h += layer(v)`` in place (a residual connection), returning ``h``."""
        h.addmm_(v, self.matrix)
        return h if self.bias is None else h.add_(self.bias)

    def with_bias_row(self) -> torch.Tensor:
        """The matrix with the bias as one more input row ``[in + 1, out]``: for inputs that
        end in a constant 1, the layer is then one product (:meth:`add_into` without ``add_``)."""
        bias = self.bias if self.bias is not None else self.matrix.new_zeros(self.matrix.shape[1])
        return torch.cat([self.matrix, bias[None]]).contiguous()


class OutputLayers:
    """:func:`pixelzoo.nn.masked_output_layers` (ReLU - 1x1 - ReLU - 1x1) at one position."""

    def __init__(self, stack):
        self.first, self.second = Pointwise(stack[1]), Pointwise(stack[3])

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(torch.relu(v)).relu_())


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
