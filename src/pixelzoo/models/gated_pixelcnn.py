"""Gated PixelCNN, unconditional or conditioned on a class, a vector or a spatial map.

van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves, Kavukcuoglu 2016,
"Conditional Image Generation with PixelCNN Decoders", NeurIPS. §2.1 (gated
convolutional layers, eq. 2), §2.2 (vertical and horizontal stacks, Figure 2),
§2.3 (conditioning, eqs. 4-5), §3.1 (results: CIFAR-10 3.03 bits/dim with 20
layers of 384 units and 5x5 filters).

One layer (Figure 2), with p feature maps per stack:

* vertical stack: ``v_pre = V(v)``, a ``(k//2+1) x k`` convolution over the rows
  above and the current row (:class:`pixelzoo.nn.VerticalStackConv`, 2p maps);
  ``v' = tanh(v_pre[:p]) * sigmoid(v_pre[p:])``;
* horizontal stack: ``h_pre = H(h) + L(shift_down(v_pre))``: a ``1 x (k//2+1)``
  convolution over the pixel and those to its left, plus a 1x1 convolution of
  the vertical stack's pre-activations **shifted down one row**, so that the
  horizontal stack never sees the current row through it. The horizontal stack
  never feeds the vertical one. ``g = gate(h_pre)``; ``h' = h + R(g)`` (residual,
  1x1) and the layer's skip output is ``S(g)`` (1x1);
* conditioning (§2.3) adds ``V^T h`` (a vector: the same at every location) or a
  1x1 convolution of ``s = m(h)`` (a map) to both stacks' pre-activations.

The first layer has type A: its horizontal convolution excludes the pixel's own
colour group, and it has no residual connection (its input is the image). The
skip outputs of all layers are summed and go through ReLU - 1x1 - ReLU - 1x1 to
the output distribution. Colour images use PixelRNN §3.4's R -> G -> B channel
groups in every layer of the horizontal stack (the vertical stack only reaches the
horizontal one a row later, where every colour is in the past).

The receptive field of pixel (i, j) with L layers after a first layer of kernel
k0 and body kernel k is exactly: rows ``i - (k0//2 + 1 + L k//2) .. i - 1`` times
columns ``j +- (k0//2 + L k//2)``, plus row i from ``j - (k0//2 + L k//2)`` to
``j - 1``; no blind spot (tested by gradients in ``tests/test_gated.py``).

NOTE: the paper trains with RMSProp; pixelzoo's trainer uses Adam.
NOTE: the vertical stack's n x n masked convolution is written as an unmasked
(n//2+1) x n convolution of a top-padded map, which computes the same function
with half the multiplications (§2.2 suggests this form).
NOTE: the paper's Figure 2 applies the 1x1 vertical-to-horizontal link to the
vertical pre-activations; we do the same and shift it down one row. Because the link
is 1x1, shifting its output (its bias added everywhere, folded into the horizontal
convolution's) is the same function as shifting its input, and lets the convolution
read the dense map: a compiled training step of the 10x128 model had spent about 10%
of its time materialising the shifted input for oneDNN (2-core AMX Xeon, bf16), and
5-8% more concatenating the gradients of the [residual | skip] convolution's halves,
which are now two convolutions with the halves of its kernel (one parameter still).
NOTE: ``layers`` counts the gated layers after the first (type A) one, as
pytorch-generative's ``n_gated``; the paper's CIFAR-10 model has 20 in all, so its
preset has 19 after the first.
NOTE: the paper does not give the output layers' width nor the first layer's
kernel; the CIFAR-10 preset uses 1024 output units (as PixelCNN's Table 2) and a
7x7 first layer (as PixelCNN), the small presets less.
NOTE: with a class label, ``V^T h`` of a one-hot h is a learned vector per class
and layer (eq. 4); spatial conditioning uses ``m``: transposed convolutions up to
the image size (:class:`pixelzoo.nn.conditioning.SpatialUpsampler`).
NOTE: input images are scaled to [-1, 1] before the first layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.registry import register
from pixelzoo.nn import (
    ConditionInput,
    HorizontalStackConv,
    MaskedConv2d,
    VerticalStackConv,
    cond_projection,
    gate,
    masked_output_layers,
    shift_down,
)
from pixelzoo.sampling.steppers import (
    Buffer,
    MaskedConvBuffer,
    OutputLayers,
    Pointwise,
    at,
    like_model,
    pixel_input,
)
from pixelzoo.utils.settings import setting


@dataclass
class GatedPixelCNNConfig:
    """Gated PixelCNN hyper-parameters.

    Args:
        hidden: p, feature maps of each stack (the gates work on 2p).
        layers: gated layers after the first (type A) one.
        first_kernel: kernel size n of the first layer's stacks.
        kernel: kernel size n of the other layers' stacks.
        out_hidden: feature maps of the first 1x1 output layer.
        num_classes: condition on class labels ``[B]`` in ``0..num_classes-1``.
        cond_shape: condition on a float vector ``(D,)`` or map ``(D, h, w)``.
        cond_maps: feature maps of the up-sampling network m (spatial maps only).
    """

    hidden: int = setting(32, low=1, high=4096)
    layers: int = setting(5, low=0, high=1000)
    first_kernel: int = setting(7, low=1, high=31)
    kernel: int = setting(3, low=1, high=31)
    out_hidden: int = setting(64, low=1, high=8192)
    num_classes: int | None = setting(None, high=100_000)
    cond_shape: tuple[int, ...] | None = setting(None, low=1, high=65_536)
    cond_maps: int = setting(32, low=1, high=4096)


PRESETS = {
    # The 8x8 digits demo: a few seconds per epoch on 2 CPU cores.
    "default": dict(hidden=32, layers=5, out_hidden=64),
    # Ours for a 2-core CPU (see benchmarks/nll_budget.py and the README).
    "binarized_mnist_cpu": dict(hidden=32, layers=8, out_hidden=64),
    # pytorch-generative's model (10 gated layers x 128 maps, 32 output units),
    # 81.50 nats on dynamically binarized MNIST there.
    "binarized_mnist": dict(hidden=128, layers=10, out_hidden=32),
    # §3.1: 20 layers of 384 units with 5x5 filters (19 after the first; see NOTE);
    # 120 M parameters with 256-way softmax outputs. Not trained here (no CIFAR-10 copy).
    "cifar10": dict(hidden=384, layers=19, first_kernel=7, kernel=5, out_hidden=1024),
    # Ours, for 32x32 colour (cifar10-jpeg) on a CPU.
    "cifar10_cpu": dict(hidden=48, layers=8, out_hidden=128),
    # The smallest model with every part, for the property tests.
    "tiny": dict(hidden=6, layers=2, out_hidden=12),
}


class GatedLayer(nn.Module):
    """One layer of Figure 2: ``(v, h, c) -> (v', h', skip)``.

    Args:
        in_channels: maps of the layer's input (the image's C for the first layer).
        hidden: p.
        kernel: n.
        first: type A (no residual, own colour group masked).
        groups: colour channels.
        cond: the model's :class:`ConditionInput` (None if unconditional).
    """

    def __init__(self, in_channels, hidden, kernel, first, groups, cond: ConditionInput | None):
        super().__init__()
        p = hidden
        self.first = first
        self.vertical = VerticalStackConv(in_channels, 2 * p, kernel)
        self.horizontal = HorizontalStackConv(
            in_channels, 2 * p, kernel, "A" if first else "B", groups, chunks=2
        )
        self.link = nn.Conv2d(2 * p, 2 * p, 1)  # vertical -> horizontal, one row down
        # Residual and skip 1x1 convolutions as one (chunks: [residual | skip]).
        self.out = MaskedConv2d(p, 2 * p, 1, "B", groups, chunks=2)
        # V for both stacks at once: [vertical 2p | horizontal 2p].
        self.cond = cond_projection(cond, 4 * p) if cond is not None else None

    def forward(self, v, h, c=None):
        v_pre = self.vertical(v)  # (B, 2p, H, W): rows <= i
        # L(shift_down(v_pre)) = shift_down(W v_pre) + b: the 1x1 link is computed on the
        # map itself and its output shifted, so the convolution reads a dense tensor
        # (a shifted view made oneDNN copy its input first; see the NOTE above).
        link = F.conv2d(v_pre, self.link.weight)
        h_pre = self.horizontal(h, extra_bias=self.link.bias) + shift_down(link)
        if self.cond is not None:
            cv, ch = self.cond(c).chunk(2, dim=1)
            v_pre, h_pre = v_pre + cv, h_pre + ch
        # R and S as two convolutions with the halves of the one [residual | skip] kernel:
        # the same outputs, and their gradients are not concatenated into a 2p map
        # (compiled, that concatenation was a strided copy; see the NOTE above).
        g = gate(h_pre)
        w, b = self.out.masked_weight().chunk(2), self.out.bias.chunk(2)
        residual, skip = F.conv2d(g, w[0], b[0]), F.conv2d(g, w[1], b[1])
        return gate(v_pre), residual if self.first else h + residual, skip


@register("gated_pixelcnn", config=GatedPixelCNNConfig, presets=PRESETS)
class GatedPixelCNN(AutoregressiveModel):
    """Gated PixelCNN (van den Oord et al. 2016): vertical + horizontal stacks, conditioning."""

    def __init__(self, image_shape, levels, config: GatedPixelCNNConfig):
        super().__init__(image_shape, levels, config)
        c, height, width = image_shape
        p = config.hidden
        if p < c or config.out_hidden < c:
            raise ConfigError(f"hidden and out_hidden must be at least the {c} colour channels")
        for k in (config.first_kernel, config.kernel):
            if k < 1 or k % 2 == 0:
                raise ConfigError(f"kernel sizes must be odd and positive, got {k}")
        if config.layers < 0:
            raise ConfigError(f"layers must be >= 0, got {config.layers}")
        self.cond_input = (
            ConditionInput(self.num_classes, self.cond_shape, (height, width), config.cond_maps)
            if self.conditional
            else None
        )
        self.layers = nn.ModuleList(
            [GatedLayer(c, p, config.first_kernel, True, c, self.cond_input)]
            + [
                GatedLayer(p, p, config.kernel, False, c, self.cond_input)
                for _ in range(config.layers)
            ]
        )
        self.output = masked_output_layers(p, config.out_hidden, self.likelihood.num_params, c)

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        c = self.cond_input(cond) if self.cond_input is not None else None
        v, h, skips = u, u, 0
        for layer in self.layers:
            v, h, skip = layer(v, h, c)
            skips = skips + skip
        return self.output(skips)  # (B, P, H, W)

    def cached_stepper(self, x, cond=None):
        return GatedPixelCNNStepper(self, x, cond)


class GatedPixelCNNStepper:
    """Cached sampling for the Gated PixelCNN (see :mod:`pixelzoo.sampling.steppers`).

    The vertical stack at row i sees only rows <= i, and the horizontal stack reads
    it one row down. So when row i is complete, the whole vertical stack is computed
    for row i in one go (and its 1x1 link into the horizontal stack); the horizontal
    stack runs pixel by pixel. Class, vector and spatial conditioning terms are
    computed once and read at each row or position.

    Per pixel, each layer's horizontal pre-activation is one matrix product on its
    :class:`MaskedConvBuffer` window, added to a per-row base (the link from the
    vertical stack, the conditioning term and the bias, made at :meth:`begin_row`);
    the rest works on ``[n, C]`` rows.
    """

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model, self.width = model, w
        like = like_model(model, x)
        layers = model.layers
        first = layers[0]
        self.x_buf = Buffer(like, n, c, (h, w), [first.vertical])
        p = first.vertical.out_channels // 2
        self.v_in = [self.x_buf] + [Buffer(like, n, p, (h, w), [L.vertical]) for L in layers[1:]]
        self.h_in = [MaskedConvBuffer(like, n, c, (h, w), first.horizontal)] + [
            MaskedConvBuffer(like, n, p, (h, w), L.horizontal) for L in layers[1:]
        ]
        hc = model.cond_input(cond) if model.cond_input is not None else None
        # Per layer: (vertical term, horizontal term), [n, 2p, 1, 1] or maps [n, 2p, H, W].
        self.cond_terms = [L.cond(hc).chunk(2, 1) if L.cond is not None else None for L in layers]
        self.zero_row = like.new_zeros(n, 2 * p, 1, w)
        self.base = [like.new_zeros(w, n, 2 * p) for _ in layers]  # (W, n, 2p) per row
        self.base_at = [list(b.unbind(0)) for b in self.base]
        self.out = [Pointwise(L.out) for L in layers]
        self.output = OutputLayers(model.output)

    def begin_row(self, i):
        """Vertical stack at row i - 1 (final now), and its link into row i of the horizontal stack."""
        for k, layer in enumerate(self.model.layers):
            if i == 0:
                link = layer.link(self.zero_row)
            else:
                v_pre = self.v_in[k].conv(layer.vertical, i - 1)  # (n, 2p, 1, W)
                link = layer.link(v_pre)
                if self.cond_terms[k] is not None:
                    v_pre = v_pre + at(self.cond_terms[k][0], i - 1)
                if k + 1 < len(self.v_in):
                    self.v_in[k + 1].put(gate(v_pre), i - 1)
            if self.cond_terms[k] is not None:
                link = link + at(self.cond_terms[k][1], i)
            self.base[k].copy_(link[:, :, 0].permute(2, 0, 1)).add_(layer.horizontal.bias)

    def step(self, x, i, j, need):
        self.commit(x, i, j)
        layers = self.model.layers
        skips = None
        for k, layer in enumerate(layers):
            buf = self.h_in[k]
            h_pre = torch.addmm(self.base_at[k][j], buf.window(i, j), buf.matrix)
            residual, skip = self.out[k](gate(h_pre)).chunk(2, dim=1)
            if k + 1 < len(layers):  # this layer's h, the next one's input
                h = self.h_in[k + 1].cell(i, j)
                if layer.first:
                    h.copy_(residual)
                else:
                    torch.add(buf.cell(i, j), residual, out=h)
            skips = skip if skips is None else skips + skip
        if not need:
            return None
        return self.output(skips)

    def commit(self, x, i, j):
        u = pixel_input(self.model, x, i, j)  # (n, C, 1, 1): read by both stacks
        self.x_buf.put(u, i, j)
        self.h_in[0].cell(i, j).copy_(u[:, :, 0, 0])
