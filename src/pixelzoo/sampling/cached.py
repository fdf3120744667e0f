"""Cached ("fast") sampling for convolutional autoregressive models.

Ramachandran, Le Paine, Khorrami, Babaeizadeh, Chang, Zhang, Hasegawa-Johnson,
Campbell, Huang 2017, "Fast Generation for Convolutional Autoregressive Models".

The naive sampler runs the whole network for every draw, recomputing millions
of activations that did not change. But in a causal network every activation
depends on a fixed set of earlier pixels: once those are drawn, its value is
final. A cached sampler computes each activation **once**, at the step where it
becomes final, and keeps it in a per-layer buffer (the paper's per-layer cache)
from which later steps read their convolution windows. For the models here:

* **PixelCNN** (masked convolutions): every layer's output at pixel (i, j)
  depends on pixels before (i, j) (and, by colour group, on the pixel's earlier
  channels). At each draw all layers are computed at (i, j) alone; each
  convolution reads its k x k window of the buffer below it.
* **Gated PixelCNN**: the vertical stack at row i sees only rows <= i, and the
  horizontal stack reads it one row down. So when row i is complete, the whole
  vertical stack is computed for row i in one go (and its 1x1 link into the
  horizontal stack); the horizontal stack runs pixel by pixel.
* **PixelCNN++**: the "above" stream ``u`` at resolution k (scale s = 2^k) and
  row I depends on image rows < s I: it is computed a whole row at a time when
  image row s I begins. The "above and left" stream ``ul`` at (I, J) depends on
  pixels before (s I, s J): it is computed at that pixel, so the layers at half
  resolution run every 2nd pixel of every 2nd row, at a quarter every 4th (the
  paper's "strided layers run every 2^k steps"). Transposed convolutions read
  the one low-resolution position (or row) their output comes from.

Every buffer is zero-padded as the layer's convolution pads its input, so a
window is a plain slice and the arithmetic is the full forward pass's,
position by position. Parameters agree with the naive sampler's to rounding
(they are equal to ~1e-15 in float64, as tested), hence so do the samples.

Each stepper has the interface of :class:`pixelzoo.sampling.ancestral.NaiveStepper`:
``begin_row(i)`` when image rows < i are final, ``step(x, i, j, need)`` to
compute position (i, j) (returning the likelihood's parameters if ``need``), and
``commit(x, i, j)`` once pixel (i, j) is final.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pixelzoo.nn import concat_elu, gate


def _weight(conv) -> torch.Tensor:
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
        self.weights = {id(conv): _weight(conv) for conv in convs}
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


def _pixel(model, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """Pixel (i, j) of integer images as the network's input ``[n, C, 1, 1]``."""
    return model.embed(x[:, :, i : i + 1, j : j + 1]).to(model.dtype)


def _like(model, x: torch.Tensor) -> torch.Tensor:
    return torch.empty(0, dtype=model.dtype, device=x.device)


def _at(t: torch.Tensor, i: int, j: int | None = None) -> torch.Tensor:
    """A per-image term ``[n, C, 1, 1]`` as is, or row i / position (i, j) of a map."""
    if t.shape[-2:] == (1, 1):
        return t
    row = t[:, :, i : i + 1]
    return row if j is None else row[..., j : j + 1]


class PixelCNNStepper:
    """PixelCNN: every layer at (i, j) alone, re-run for each colour channel of the pixel."""

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model = model
        like = _like(model, x)
        self.x_buf = Buffer(like, n, c, (h, w), [model.input])
        self.bufs = [
            Buffer(like, n, block.conv.in_channels, (h, w), [block.conv]) for block in model.blocks
        ]

    def begin_row(self, i):
        pass

    def step(self, x, i, j, need):
        m = self.model
        self.x_buf.put(_pixel(m, x, i, j), i, j)  # the pixel's channels drawn so far
        h = self.x_buf.conv(m.input, i, j)
        for block, buf in zip(m.blocks, self.bufs, strict=True):
            buf.put(block.reduce(h), i, j)
            h = h + block.expand(buf.conv(block.conv, i, j))
        return m.output(h)[:, :, 0, 0] if need else None

    def commit(self, x, i, j):
        self.x_buf.put(_pixel(self.model, x, i, j), i, j)


class GatedPixelCNNStepper:
    """Gated PixelCNN: the vertical stack a row at a time, the horizontal stack per pixel."""

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model, self.width = model, w
        like = _like(model, x)
        layers = model.layers
        first = layers[0]
        self.x_buf = Buffer(like, n, c, (h, w), [first.vertical, first.horizontal])
        p = first.vertical.out_channels // 2
        self.v_in = [self.x_buf] + [Buffer(like, n, p, (h, w), [L.vertical]) for L in layers[1:]]
        self.h_in = [self.x_buf] + [Buffer(like, n, p, (h, w), [L.horizontal]) for L in layers[1:]]
        hc = model.cond_input(cond) if model.cond_input is not None else None
        # Per layer: (vertical term, horizontal term), [n, 2p, 1, 1] or maps [n, 2p, H, W].
        self.cond_terms = [L.cond(hc).chunk(2, 1) if L.cond is not None else None for L in layers]
        self.zero_row = like.new_zeros(n, 2 * p, 1, w)
        self.link_rows: list[torch.Tensor] = []

    def begin_row(self, i):
        """Vertical stack at row i - 1 (final now), and its link into row i of the horizontal stack."""
        self.link_rows = []
        for k, layer in enumerate(self.model.layers):
            if i == 0:
                self.link_rows.append(layer.link(self.zero_row))
                continue
            v_pre = self.v_in[k].conv(layer.vertical, i - 1)  # (n, 2p, 1, W)
            self.link_rows.append(layer.link(v_pre))
            if self.cond_terms[k] is not None:
                v_pre = v_pre + _at(self.cond_terms[k][0], i - 1)
            if k + 1 < len(self.v_in):
                self.v_in[k + 1].put(gate(v_pre), i - 1)

    def step(self, x, i, j, need):
        m = self.model
        self.x_buf.put(_pixel(m, x, i, j), i, j)
        skips = 0
        for k, layer in enumerate(m.layers):
            h_pre = self.h_in[k].conv(layer.horizontal, i, j) + self.link_rows[k][..., j : j + 1]
            if self.cond_terms[k] is not None:
                h_pre = h_pre + _at(self.cond_terms[k][1], i, j)
            residual, skip = layer.out(gate(h_pre)).chunk(2, dim=1)
            h = residual if layer.first else self.h_in[k].at(i, j) + residual
            skips = skips + skip
            if k + 1 < len(self.h_in):
                self.h_in[k + 1].put(h, i, j)
        return m.output(skips)[:, :, 0, 0] if need else None

    def commit(self, x, i, j):
        self.x_buf.put(_pixel(self.model, x, i, j), i, j)


class PixelCNNPPStepper:
    """PixelCNN++: ``u`` rows at each resolution, ``ul`` positions every 2^k pixels."""

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model = model
        self.h = model.condition(cond)
        like = _like(model, x)
        f, r = model.config.filters, model.config.resolutions
        self.res = r
        self.sizes = [(h, w)]
        for _ in range(r - 1):
            hh, ww = self.sizes[-1]
            self.sizes.append(((hh + 1) // 2, (ww + 1) // 2))

        def buf(ch, k, convs=()):
            return Buffer(like, n, ch, self.sizes[k], convs)

        self.x_buf = buf(c + 1, 0, [model.u_init, model.ul_init_up, model.ul_init_left])
        # Up pass: the kept maps of each resolution (as ``us`` / ``uls`` in the forward
        # pass); the last one of resolution k feeds the stride-2 convolution into k + 1.
        self.keep_u, self.keep_ul = [], []
        for k in range(r):
            down_u = [model.down_u[k]] if k < r - 1 else []
            down_ul = [model.down_ul[k]] if k < r - 1 else []
            count = model.config.blocks + 1
            self.keep_u.append([buf(f, k, down_u if b == count - 1 else []) for b in range(count)])
            self.keep_ul.append(
                [buf(f, k, down_ul if b == count - 1 else []) for b in range(count)]
            )
        # Each block's own inputs to its two convolutions.
        self.block_bufs = {}
        for k in range(r):
            for block in [*model.up_u[k], *model.up_ul[k], *model.dn_u[k], *model.dn_ul[k]]:
                self.block_bufs[id(block)] = (
                    buf(2 * f, k, [block.conv1]),
                    buf(2 * f, k, [block.conv2]),
                )
        # Down pass: u after each block (the ul blocks' shortcut) and each resolution's result.
        self.down_u = [[buf(f, k) for _ in model.dn_u[k]] for k in range(r)]
        self.out_u = [buf(f, k) for k in range(r)]
        self.out_ul = [buf(f, k) for k in range(r)]
        self.zero_row = like.new_zeros(n, f, 1, w)  # a shifted-in first row
        self.ul_top = self.zero_row

    def _block(self, block, x, a, i, j):
        """One gated ResNet block at row i (``j=None``) or position (i, j)."""
        xe, mid = self.block_bufs[id(block)]
        xe.put(concat_elu(x), i, j)
        mid.put(block.middle(xe.conv(block.conv1, i, j), a), i, j)
        return block.finish(x, mid.conv(block.conv2, i, j), self.h)

    def _u_up(self, k, i):
        m, keep = self.model, self.keep_u[k]
        if k == 0:  # shift_down(u_init(x)): row i comes from image rows i-2, i-1
            u = self.x_buf.conv(m.u_init, i - 1) if i > 0 else self.zero_row
        else:
            u = self.keep_u[k - 1][-1].conv(m.down_u[k - 1], i)
        keep[0].put(u, i)
        for b, block in enumerate(m.up_u[k]):
            u = self._block(block, u, None, i, None)
            keep[b + 1].put(u, i)

    def _ul_up(self, k, i, j):
        m, keep = self.model, self.keep_ul[k]
        if k == 0:  # shift_down(ul_init_up(x)) + right_shift(ul_init_left(x))
            ul = self.ul_top[..., j : j + 1]
            if j > 0:
                ul = ul + self.x_buf.conv(m.ul_init_left, i, j - 1)
        else:
            ul = self.keep_ul[k - 1][-1].conv(m.down_ul[k - 1], i, j)
        keep[0].put(ul, i, j)
        for b, block in enumerate(m.up_ul[k]):
            ul = self._block(block, ul, self.keep_u[k][b + 1].at(i, j), i, j)
            keep[b + 1].put(ul, i, j)

    def _u_down(self, k, i):
        m, keep = self.model, self.keep_u[k]
        if k == self.res - 1:
            u, shortcuts = keep[-1].at(i), keep[-2::-1]
        else:  # row i of the 2x3 transposed convolution comes from row i // 2 alone
            up = m.up_sample_u[k]
            full = F.conv_transpose2d(self.out_u[k + 1].at(i // 2), up.weight, up.bias, stride=2)
            u, shortcuts = full[:, :, i % 2 : i % 2 + 1, 1 : 1 + self.sizes[k][1]], keep[::-1]
        for b, (block, short) in enumerate(zip(m.dn_u[k], shortcuts, strict=True)):
            u = self._block(block, u, short.at(i), i, None)
            self.down_u[k][b].put(u, i)
        self.out_u[k].put(u, i)

    def _ul_down(self, k, i, j):
        m, keep = self.model, self.keep_ul[k]
        if k == self.res - 1:
            ul, shortcuts = keep[-1].at(i, j), keep[-2::-1]
        else:  # position (i, j) of the 2x2 transposed convolution comes from (i // 2, j // 2)
            up = m.up_sample_ul[k]
            low = self.out_ul[k + 1].at(i // 2, j // 2)
            full = F.conv_transpose2d(low, up.weight, up.bias, stride=2)
            ul, shortcuts = full[:, :, i % 2 : i % 2 + 1, j % 2 : j % 2 + 1], keep[::-1]
        for b, (block, short) in enumerate(zip(m.dn_ul[k], shortcuts, strict=True)):
            a = torch.cat([self.down_u[k][b].at(i, j), short.at(i, j)], 1)
            ul = self._block(block, ul, a, i, j)
        self.out_ul[k].put(ul, i, j)
        return ul

    def begin_row(self, i):
        """Image rows < i are final: every ``u`` row that depends on no more."""
        m = self.model
        if i > 0:
            self.ul_top = self.x_buf.conv(m.ul_init_up, i - 1)
        for k in range(self.res):
            if i % 2**k == 0:
                self._u_up(k, i >> k)
        for k in reversed(range(self.res)):
            if i % 2**k == 0:
                self._u_down(k, i >> k)

    def step(self, x, i, j, need):
        for k in range(self.res):
            if i % 2**k == 0 and j % 2**k == 0:
                self._ul_up(k, i >> k, j >> k)
        for k in reversed(range(self.res)):
            if i % 2**k == 0 and j % 2**k == 0:
                ul = self._ul_down(k, i >> k, j >> k)
        return self.model.output(F.elu(ul))[:, :, 0, 0] if need else None

    def commit(self, x, i, j):
        px = _pixel(self.model, x, i, j)
        self.x_buf.put(torch.cat([px, torch.ones_like(px[:, :1])], 1), i, j)


STEPPERS = {
    "pixelcnn": PixelCNNStepper,
    "gated_pixelcnn": GatedPixelCNNStepper,
    "pixelcnn_pp": PixelCNNPPStepper,
}


def cached_stepper(model, x: torch.Tensor, cond):
    """The cached stepper for ``model``, or None where there is none.

    The auto-encoder samples through its Gated PixelCNN decoder given a code; with
    ``cond=None`` its condition is the code of the (changing) image itself, which
    only the naive sampler evaluates.
    """
    if model.registry_name == "pixelcnn_ae":
        if cond is None:
            return None
        return GatedPixelCNNStepper(model.decoder, x, cond)
    stepper = STEPPERS.get(model.registry_name)
    return stepper(model, x, cond) if stepper is not None else None
