"""PixelRNN: the Row LSTM and the Diagonal BiLSTM.

van den Oord, Kalchbrenner, Kavukcuoglu 2016, "Pixel Recurrent Neural Networks",
ICML. §3.1 (Row LSTM), §3.2 (Diagonal BiLSTM), §3.3 (residual and skip
connections), §3.4 (masks A/B, R -> G -> B channel groups), Table 1
(architectures), §5 (results: static binarized MNIST 80.54 nats for the Row LSTM
and 79.20 for the Diagonal BiLSTM with 7 layers of h = 16; CIFAR-10 3.07 and 3.00
bits/dim with 12 layers of h = 128).

Both networks (Table 1): a 7x7 mask-A convolution to 2h feature maps; a stack of
residual LSTM layers; ReLU - 1x1 mask B - ReLU - 1x1 mask B to the output
distribution (sigmoid for binary data, 256-way softmax per colour otherwise).

Residual LSTM layer (§3.3): the input-to-state convolution maps the 2h input
maps to h features per gate (4h); the recurrence produces h maps; a 1x1
convolution brings them back to 2h, and the layer's input is added. With skip
connections each layer's output also reaches the output layers through its own
1x1 convolution.

* **Row LSTM** (§3.1): the input-to-state part is a 1 x k (k = 3) mask-B
  convolution over the whole input map at once; the recurrence runs top to bottom,
  one row per step, its state-to-state part a 1-D convolution (k = 3, unmasked:
  the previous row is all in the past) over the previous row's hidden state. Its
  receptive field is a triangle above the pixel: it misses pixels far to the
  upper right.
* **Diagonal BiLSTM** (§3.2): the input-to-state part is a 1x1 mask-B
  convolution; the map is skewed (row r shifted right by r) so that every
  diagonal becomes a column, and the recurrence runs left to right, one column
  (= one diagonal) per step, its state-to-state part a 2x1 column convolution
  over the previous column's hidden states (the pixel above and the pixel to the
  left). The second direction runs on the horizontally flipped map (the pixel
  above and the pixel to the right) and its output is **shifted down one row**
  before being added: without the shift it would see pixels to the right in the
  current row, i.e. the future. Together the two directions see every pixel
  before the current one: no blind spot (see the NOTE on the image input).

Every recurrence advances a whole row or diagonal per step, batched over images
and positions; there is no loop over pixels.

NOTE: the paper trains with RMSProp; pixelzoo's trainer uses Adam for every
likelihood model.
NOTE: the paper gives no Row LSTM configuration for MNIST; the
``binarized_mnist`` preset uses the Diagonal BiLSTM's (7 layers, h = 16).
NOTE: the paper does not give the width of the first 1x1 output layer; ours are
32 for MNIST and 1024 for CIFAR-10 (as the PixelCNN of Table 2).
NOTE: eq. 3 has one cell state per position; in the Diagonal BiLSTM the cell
carried forward is that of the same row in the previous column (the left
neighbour, or the right one for the flipped direction). The pixel above enters
through the hidden state only.
NOTE: with only the paper's inputs the Diagonal BiLSTM has a one-pixel blind
spot, which we measured (``pixelzoo receptive-field``): the value of the last
pixel of the row above, x[r-1, W-1], is in no feature of row r-1 (a mask-A/B
feature at a position never contains that position's own value, and nothing lies
to its right), so the shifted right-to-left direction cannot carry it to (r, j),
and the 7x7 first layer reaches it only from j >= W-4. Our right-to-left
direction therefore also reads the image itself through a 1x1 convolution of all
channels. That is legal because its output is used one row down, where every
sub-pixel of row r-1 is in the past, and it closes the blind spot.
NOTE: forget-gate biases start at 1 (Jozefowicz et al. 2015), not stated in the paper.
NOTE: input images are scaled to [-1, 1] before the first layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.registry import register
from pixelzoo.nn import (
    MaskedConv2d,
    lstm_update,
    masked_output_layers,
    shift_down,
    skew,
    unskew,
)
from pixelzoo.utils.settings import setting

# --------------------------------------------------------------------------- layers


def _forget_bias_one(conv: MaskedConv2d, directions: int = 1) -> None:
    """Set the forget-gate biases of an input-to-state conv (gates o, f, i, g per direction)."""
    h = conv.out_channels // (4 * directions)
    with torch.no_grad():
        for d in range(directions):
            conv.bias[(4 * d + 1) * h : (4 * d + 2) * h] = 1.0


class RowLSTM(nn.Module):
    """§3.1: an LSTM over rows, top to bottom; ``[B, 2h, H, W] -> [B, h, H, W]``.

    Args:
        channels: input feature maps (2h).
        hidden: h, the state size per position.
        kernel: k, the width of both 1-D convolutions (odd, >= 3).
        groups: colour channels (1 or 3) whose order the input mask keeps.
    """

    def __init__(self, channels: int, hidden: int, kernel: int, groups: int):
        super().__init__()
        self.hidden = hidden
        self.input_to_state = MaskedConv2d(channels, 4 * hidden, (1, kernel), "B", groups, chunks=4)
        self.state_to_state = nn.Conv1d(hidden, 4 * hidden, kernel, padding=kernel // 2, bias=False)
        _forget_bias_one(self.input_to_state)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``x``: the layer's input maps; ``image`` is unused (see DiagonalBiLSTM)."""
        gates_in = self.input_to_state(x)  # (B, 4h, H, W), all rows at once
        b, _, _, width = gates_in.shape
        h = x.new_zeros(b, self.hidden, width)
        c = torch.zeros_like(h)
        out = []
        # unbind, not indexing: autograd then stacks the rows' gradients once
        # instead of filling a full-size zero tensor per step.
        for gates_row in gates_in.unbind(2):  # one whole row per step
            h, c = lstm_update(gates_row + self.state_to_state(h), c, dim=1)
            out.append(h)
        return torch.stack(out, dim=2)  # (B, h, H, W)


class DiagonalBiLSTM(nn.Module):
    """§3.2: two diagonal LSTMs over the skewed map; ``[B, 2h, H, W] -> [B, h, H, W]``.

    Args:
        channels: input feature maps (2h).
        hidden: h, the state size per position and direction.
        groups: colour channels (1 or 3) of the image; the input mask keeps their order.
    """

    def __init__(self, channels: int, hidden: int, groups: int):
        super().__init__()
        self.hidden = hidden
        # Both directions' gates from one 1x1 mask-B convolution: 2 x (o, f, i, g).
        self.input_to_state = MaskedConv2d(channels, 8 * hidden, 1, "B", groups, chunks=8)
        _forget_bias_one(self.input_to_state, directions=2)
        # The right-to-left direction also reads every channel of the image
        # itself (unmasked: it is used one row down). See the NOTE above.
        bound = 1.0 / math.sqrt(channels)
        self.image_to_state = nn.Parameter(torch.empty(groups, 4 * hidden).uniform_(-bound, bound))
        # The 2x1 column convolution of each direction, as one matrix acting on
        # [state of the pixel above ; state of the pixel beside] -> 4h gates.
        bound = 1.0 / math.sqrt(2 * hidden)
        self.state_to_state = nn.Parameter(
            torch.empty(2, 2 * hidden, 4 * hidden).uniform_(-bound, bound)
        )

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """``x``: the layer's input maps ``[B, 2h, H, W]``; ``image``: ``[B, C, H, W]``."""
        b, channels, rows, width = x.shape
        hid = self.hidden
        # Skew both directions' inputs (the second runs on the flipped map) so
        # that diagonal t is column t, and lay them out step-major, channels last:
        # (T, direction, B*H, 2h + C). The 1x1 input-to-state convolution
        # commutes with skewing, so it is applied afterwards as one matrix
        # product that writes the gates contiguously per step.
        inputs = torch.cat([x, image], dim=1)
        skewed = skew(torch.stack([inputs, inputs.flip(-1)]))  # (2, B, 2h + C, H, T)
        steps = skewed.shape[-1]
        skewed = skewed.permute(4, 0, 1, 3, 2).reshape(steps, 2, b * rows, -1)
        conv = self.input_to_state
        weight = conv.masked_weight().view(2, 4 * hid, channels).transpose(1, 2)
        from_image = torch.stack([torch.zeros_like(self.image_to_state), self.image_to_state])
        weight = torch.cat([weight, from_image], dim=1)  # (2, 2h + C, 4h); left: no image
        gates_in = torch.matmul(skewed, weight) + conv.bias.view(2, 1, 4 * hid)  # (T, 2, B*H, 4h)

        h = x.new_zeros(2, b, rows, hid)  # the previous column's states
        c = x.new_zeros(2, b * rows, hid)
        out = []
        for gates_t in gates_in.unbind(0):  # one whole diagonal per step
            above = F.pad(h, (0, 0, 1, 0))[:, :, :rows]  # previous column, one row up
            state = torch.cat([above, h], dim=-1).view(2, b * rows, 2 * hid)
            h, c = lstm_update(torch.baddbmm(gates_t, state, self.state_to_state), c)
            h = h.view(2, b, rows, hid)
            out.append(h)
        out = torch.stack(out).permute(1, 2, 4, 3, 0)  # (2, B, h, H, T)
        left, right = unskew(out, width).unbind(0)  # (B, h, H, W) each
        # Flip the second direction back, then shift it down one row so that a
        # pixel sees its output only from the row above: rows above, any column.
        return left + shift_down(right.flip(-1))


class ResidualLSTM(nn.Module):
    """§3.3: ``x + conv1x1(lstm(x))``, the 1x1 convolution bringing h maps back to 2h."""

    def __init__(self, lstm: nn.Module, hidden: int, groups: int):
        super().__init__()
        self.lstm = lstm
        self.up = MaskedConv2d(hidden, 2 * hidden, 1, "B", groups)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return x + self.up(self.lstm(x, image))


# -------------------------------------------------------------------------- network


@dataclass
class PixelRNNConfig:
    """Hyper-parameters shared by both PixelRNNs.

    Args:
        hidden: h; layers carry 2h feature maps and their LSTMs h states.
        layers: number of residual LSTM layers.
        first_kernel: size of the first (mask A) convolution.
        out_hidden: feature maps of the first 1x1 output layer.
        skip: learnable skip connections from every layer to the output (§3.3).
    """

    hidden: int = setting(16, low=1, high=4096)
    layers: int = setting(2, low=0, high=1000)
    first_kernel: int = setting(7, low=1, high=31)
    out_hidden: int = setting(32, low=1, high=8192)
    skip: bool = True


@dataclass
class RowLSTMConfig(PixelRNNConfig):
    """PixelRNNConfig plus the Row LSTM's kernel.

    Args:
        kernel: k of the Row LSTM's 1-D convolutions (odd, at least 3).
    """

    kernel: int = setting(3, low=1, high=31)


class PixelRNN(AutoregressiveModel):
    """The network around the LSTM layers: 7x7 mask A, residual LSTMs, 1x1 output layers."""

    def make_lstm(self, channels: int, hidden: int, groups: int) -> nn.Module:
        raise NotImplementedError

    def __init__(self, image_shape, levels, config: PixelRNNConfig):
        super().__init__(image_shape, levels, config)
        c = image_shape[0]
        h = config.hidden
        if h < c or config.out_hidden < c:
            raise ConfigError(f"hidden and out_hidden must be at least the {c} colour channels")
        if config.layers < 1:
            raise ConfigError(
                f"a PixelRNN needs at least one LSTM layer, got layers={config.layers}"
            )
        self.input = MaskedConv2d(c, 2 * h, config.first_kernel, "A", c)
        self.layers = nn.ModuleList(
            ResidualLSTM(self.make_lstm(2 * h, h, c), h, c) for _ in range(config.layers)
        )
        self.skips = nn.ModuleList(
            MaskedConv2d(2 * h, 2 * h, 1, "B", c)
            for _ in range(config.layers if config.skip else 0)
        )
        self.output = masked_output_layers(2 * h, config.out_hidden, self.likelihood.num_params, c)

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        x = self.input(u)  # (B, 2h, H, W)
        skipped = 0
        for i, layer in enumerate(self.layers):
            x = layer(x, u)
            if self.config.skip:
                skipped = skipped + self.skips[i](x)
        return self.output(skipped if self.config.skip else x)  # (B, P, H, W)


ROW_LSTM_PRESETS = {
    # Small and fast for the 8x8 digits demo.
    "default": dict(hidden=16, layers=2, out_hidden=32),
    # §5: 80.54 nats; the configuration is the Diagonal BiLSTM's (see NOTE).
    "binarized_mnist": dict(hidden=16, layers=7, out_hidden=32),
    # §5: 12 layers, h = 128 -> 3.07 bits/dim.
    "cifar10": dict(hidden=128, layers=12, out_hidden=1024),
    # Ours, for 32x32 colour (cifar10-jpeg) on a CPU.
    "cifar10_cpu": dict(hidden=24, layers=4, out_hidden=96),
    # The smallest model with every part, for the property tests.
    "tiny": dict(hidden=6, layers=2, out_hidden=12),
}

DIAGONAL_BILSTM_PRESETS = {
    "default": dict(hidden=16, layers=2, out_hidden=32),
    # §5 / Table 4: 7 layers, h = 16 -> 79.20 nats.
    "binarized_mnist": dict(hidden=16, layers=7, out_hidden=32),
    # §5: 12 layers, h = 128 -> 3.00 bits/dim.
    "cifar10": dict(hidden=128, layers=12, out_hidden=1024),
    # Ours, for 32x32 colour (cifar10-jpeg) on a CPU.
    "cifar10_cpu": dict(hidden=24, layers=4, out_hidden=96),
    "tiny": dict(hidden=6, layers=2, out_hidden=12),
}


@register("row_lstm", config=RowLSTMConfig, presets=ROW_LSTM_PRESETS)
class RowLSTMModel(PixelRNN):
    """PixelRNN with Row LSTM layers (van den Oord et al. 2016, §3.1): triangular context."""

    def make_lstm(self, channels, hidden, groups):
        if self.config.kernel % 2 == 0 or self.config.kernel < 3:
            raise ConfigError(
                f"the Row LSTM kernel must be odd and at least 3, got {self.config.kernel}"
            )
        return RowLSTM(channels, hidden, self.config.kernel, groups)


@register("diagonal_bilstm", config=PixelRNNConfig, presets=DIAGONAL_BILSTM_PRESETS)
class DiagonalBiLSTMModel(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers (van den Oord et al. 2016, §3.2): no blind spot."""

    def make_lstm(self, channels, hidden, groups):
        return DiagonalBiLSTM(channels, hidden, groups)
