"""PixelCNN.

van den Oord, Kalchbrenner, Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
ICML. §3.4 (masks A/B and the R -> G -> B channel groups), §3.5 (PixelCNN),
Figure 5 (residual block), Table 2 (architecture), §5 (results: 81.30 nats on
static binarized MNIST, 3.14 bits/dim on CIFAR-10).

Architecture (Table 2): a 7x7 mask-A convolution; residual blocks of
ReLU - 1x1 (2h -> h) - ReLU - 3x3 mask B (h -> h) - ReLU - 1x1 (h -> 2h), added to
the block's input; then ReLU - 1x1 mask B - ReLU - 1x1 mask B to the output
distribution (sigmoid for binary data, 256-way softmax per colour otherwise). All
1x1 layers are masked too (type B), which is what keeps the colour channels of one
pixel in R -> G -> B order.

NOTE: the paper trains with RMSProp; the trainer here uses Adam (pixelzoo's
default optimiser for every likelihood model); both settle at similar NLLs.
NOTE: the paper does not give the MNIST PixelCNN's width/depth; the
``binarized_mnist`` presets are ours, chosen by measured NLL per training minute.
NOTE: the paper does not say how the 2h feature maps split into R/G/B groups when
2h is not a multiple of 3; channels are assigned to groups in contiguous,
near-equal blocks (``pixelzoo.nn.channel_groups``).
NOTE: input images are scaled to [-1, 1] before the first layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.registry import register
from pixelzoo.nn import MaskedConv2d, masked_output_layers
from pixelzoo.sampling.steppers import MaskedConvBuffer, OutputLayers, Pointwise, like_model
from pixelzoo.utils.settings import setting


@dataclass
class PixelCNNConfig:
    """PixelCNN hyper-parameters.

    Args:
        hidden: h; residual blocks carry 2h feature maps and work at h inside.
        blocks: number of residual blocks after the first 7x7 layer.
        first_kernel: size of the first (mask A) convolution.
        kernel: size of the mask-B convolution inside each block.
        out_hidden: feature maps of the first 1x1 output layer.
    """

    hidden: int = setting(32, low=1, high=4096)
    blocks: int = setting(4, low=0, high=1000)
    first_kernel: int = setting(7, low=1, high=31)
    kernel: int = setting(3, low=1, high=31)
    out_hidden: int = setting(64, low=1, high=8192)


PRESETS = {
    # A small model for the 8x8 digits demo: 20 epochs in about 20 s on 2 CPU cores.
    "default": dict(hidden=32, blocks=4, out_hidden=64),
    # Ours (see NOTE): 15 blocks as the paper's CIFAR model, h = 96. Measured on one
    # H100: 83.24 nats (test) after 8 minutes of training (benchmarks/nll_budget.py).
    "binarized_mnist": dict(hidden=96, blocks=15, out_hidden=256),
    # Ours: the better of two models tried for 30 minutes on a 2-core CPU (89.01 nats
    # with bf16 autocast, Adam 1.5e-3 x 0.9999 per step; h=32 with 8 blocks: 90.64).
    "binarized_mnist_cpu": dict(hidden=16, blocks=15, out_hidden=32),
    # 256-level grey MNIST (not yet benchmarked).
    "mnist": dict(hidden=64, blocks=12, out_hidden=256),
    # §5 / Table 2: 15 residual blocks, h = 128 (256 feature maps), 1024 output units.
    "cifar10": dict(hidden=128, blocks=15, out_hidden=1024),
    # Ours, for 32x32 colour (cifar10-jpeg) on a CPU: a tenth of the paper's width.
    "cifar10_cpu": dict(hidden=32, blocks=8, out_hidden=128),
    # The smallest model with every part, for the property tests.
    "tiny": dict(hidden=6, blocks=2, out_hidden=12),
}


class ResidualBlock(nn.Module):
    """PixelRNN Figure 5: 2h -> h (1x1) -> h (kxk, mask B) -> 2h (1x1), plus the input."""

    def __init__(self, h: int, kernel: int, groups: int):
        super().__init__()
        self.reduce = nn.Sequential(nn.ReLU(), MaskedConv2d(2 * h, h, 1, "B", groups), nn.ReLU())
        self.conv = MaskedConv2d(h, h, kernel, "B", groups)
        self.expand = nn.Sequential(nn.ReLU(), MaskedConv2d(h, 2 * h, 1, "B", groups))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(self.conv(self.reduce(x)))


@register("pixelcnn", config=PixelCNNConfig, presets=PRESETS)
class PixelCNN(AutoregressiveModel):
    """PixelCNN (van den Oord et al. 2016): masked convolutions, residual blocks, softmax."""

    def __init__(self, image_shape, levels, config: PixelCNNConfig):
        super().__init__(image_shape, levels, config)
        c = image_shape[0]
        h = config.hidden
        if h < c or config.out_hidden < c:
            raise ConfigError(f"hidden and out_hidden must be at least the {c} colour channels")
        self.input = MaskedConv2d(c, 2 * h, config.first_kernel, "A", c)
        self.blocks = nn.Sequential(
            *[ResidualBlock(h, config.kernel, c) for _ in range(config.blocks)]
        )
        self.output = masked_output_layers(2 * h, config.out_hidden, self.likelihood.num_params, c)

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        h = self.input(u)  # (B, 2h, H, W)
        return self.output(self.blocks(h))  # (B, P, H, W)

    def cached_stepper(self, x, cond=None):
        return PixelCNNStepper(self, x, cond)


class PixelCNNStepper:
    """Cached sampling for PixelCNN (see :mod:`pixelzoo.sampling.steppers`).

    Every layer's output at pixel (i, j) depends on pixels before (i, j) (and, by
    colour group, on the pixel's earlier channels). At each draw all layers are
    computed at (i, j) alone, re-run for each colour channel of the pixel. Each
    masked convolution's input is a :class:`MaskedConvBuffer`: the kernel rows
    above run once per image row, the current row's few positions at the step.

    The step works on ``[n, C]`` rows, each layer a few matrix products: the small
    presets are bound by the number of operations per step, not by arithmetic
    (``benchmarks/sampling.py``).
    """

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model = model
        like = like_model(model, x)
        self.x_buf = MaskedConvBuffer(like, n, c, (h, w), model.input)
        self.bufs = [
            MaskedConvBuffer(like, n, b.conv.in_channels, (h, w), b.conv) for b in model.blocks
        ]
        self.reduce = [Pointwise(block.reduce[1]) for block in model.blocks]
        # Each block's expand layer with its bias folded in as a last input row, read by
        # `mid`: the centre layer's output followed by a constant 1 (one product a layer).
        self.expand = [Pointwise(block.expand[1]).with_bias_row() for block in model.blocks]
        self.output = OutputLayers(model.output)
        hidden = model.config.hidden
        self.mid = like.new_ones(n, hidden + 1)
        self.mid_out = self.mid[:, :hidden]
        self.stream_relu = like.new_empty(n, 2 * hidden)  # relu of the residual stream

    def begin_row(self, i):
        for buf in [self.x_buf, *self.bufs]:
            buf.begin_row(i)

    def step(self, x, i, j, need):
        self.commit(x, i, j)  # the pixel's channels drawn so far
        h = self.x_buf.product(i, j)  # (n, 2h)
        relu_h, mid, mid_out = self.stream_relu, self.mid, self.mid_out
        # Four operations a block: the small presets are bound by their number.
        for buf, reduce, expand in zip(self.bufs, self.reduce, self.expand, strict=True):
            torch.clamp_min(h, 0.0, out=relu_h)
            reduce.relu_into(buf.cell(i, j), relu_h)
            buf.product_relu(i, j, mid_out)
            h.addmm_(mid, expand)
        if not need:
            return None
        return self.output(h)

    def commit(self, x, i, j):
        self.x_buf.cell(i, j).copy_(self.model.embed(x[:, :, i, j]))
