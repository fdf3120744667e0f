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

Cached sampling (:class:`RowLSTMStepper`, :class:`DiagonalBiLSTMStepper`, see
:mod:`pixelzoo.sampling.steppers`) computes each state once, when its inputs are
final. Row LSTM: the state-to-state convolution of the previous row once per
row, the input-to-state convolution and the LSTM update per pixel. Diagonal
BiLSTM: the left-to-right direction per pixel (its inputs are the pixel above and
the pixel to the left), the right-to-left one once per row, for the row above
(it is used one row down, so it needs the whole row, right to left).

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
from pixelzoo.sampling.steppers import MaskedConvBuffer, OutputLayers, Pointwise, like_model
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

    def input_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Both directions' input-to-state matrices ``[2, 2h + C, 4h]`` (on the layer's
        input maps and the image; the left-to-right direction reads no image) and biases."""
        conv = self.input_to_state
        channels = conv.in_channels
        weight = conv.masked_weight().reshape(2, 4 * self.hidden, channels).transpose(1, 2)
        from_image = torch.stack([torch.zeros_like(self.image_to_state), self.image_to_state])
        return torch.cat([weight, from_image], dim=1), conv.bias.view(2, 4 * self.hidden)

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
        weight, bias = self.input_weights()
        gates_in = torch.matmul(skewed, weight) + bias.view(2, 1, 4 * hid)  # (T, 2, B*H, 4h)

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


class PixelRNNStepper:
    """Cached sampling for both PixelRNNs (see :mod:`pixelzoo.sampling.steppers`).

    At each draw every layer is computed at (i, j) alone, re-run for each colour
    channel of the pixel: the 7x7 first layer reads its window of the image
    buffer, each LSTM its own state (:meth:`lstm_at`), the 1x1 layers act on the
    position. As in PixelCNN's stepper, a feature at (i, j) never depends on the
    pixel's last sub-pixel (mask A, then mask B), so after the last channel's step
    every state at (i, j) is final; only the image buffer is updated at commit.
    Features at a position are ``[n, C]`` rows and the 1x1 layers matrix products
    (:class:`~pixelzoo.sampling.steppers.Pointwise`): the paper's MNIST models
    are small, so a step costs what its operations cost to launch.
    """

    def __init__(self, model, x: torch.Tensor):
        n, c, h, w = x.shape
        self.model, self.n, self.width = model, n, w
        like = self.like = like_model(model, x)
        self.x_buf = MaskedConvBuffer(like, n, c, (h, w), model.input)
        self.image_row = like.new_zeros(n, c, w)  # the network's input, row i so far
        self.up = [Pointwise(layer.up) for layer in model.layers]
        self.skips = [Pointwise(skip) for skip in model.skips]
        self.output = OutputLayers(model.output)

    def begin_row(self, i: int) -> None:
        self.x_buf.begin_row(i)
        for k, layer in enumerate(self.model.layers):
            self.lstm_begin_row(k, layer.lstm, i)
        self.image_row = torch.zeros_like(self.image_row)

    def step(self, x, i, j, need):
        self.commit(x, i, j)  # the pixel's channels drawn so far
        t = self.x_buf.product(i, j)  # (n, 2h)
        skipped = None
        for k, layer in enumerate(self.model.layers):
            t = self.up[k].add_into(t, self.lstm_at(k, layer.lstm, t, i, j))
            if self.skips:
                s = self.skips[k]
                skipped = s(t) if skipped is None else s.add_into(skipped, t)
        if not need:
            return None
        return self.output(t if skipped is None else skipped)

    def commit(self, x, i, j):
        u = self.model.embed(x[:, :, i, j])
        self.x_buf.cell(i, j).copy_(u)
        self.image_row[:, :, j] = u

    def lstm_begin_row(self, k: int, lstm, i: int) -> None:
        raise NotImplementedError

    def lstm_at(self, k: int, lstm, t: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """LSTM ``k``'s output ``[n, h]`` at (i, j) from its input ``t`` ``[n, 2h]`` there
        (``t`` may change after the call: keep a copy)."""
        raise NotImplementedError


class RowLSTMStepper(PixelRNNStepper):
    """The Row LSTM's states: ``h, c`` of the row above and of this row so far, per layer.

    Each layer's input-to-state convolution reads a :class:`MaskedConvBuffer`; its
    state-to-state convolution runs once per row, on the row above's states, and
    is the base its per-position product adds to. States are kept ``[W, n, h]``,
    one contiguous ``[n, h]`` per position.
    """

    def __init__(self, model, x):
        super().__init__(model, x)
        n, w, hid = self.n, self.width, model.config.hidden
        h = x.shape[2]
        lstms = [layer.lstm for layer in model.layers]
        self.in_bufs = [
            MaskedConvBuffer(self.like, n, 2 * hid, (h, w), lstm.input_to_state) for lstm in lstms
        ]
        zeros = lambda maps=hid: self.like.new_zeros(w, n, maps)  # noqa: E731
        self.h = [zeros() for _ in lstms]  # this row's states so far (then the row above)
        self.c = [zeros() for _ in lstms]
        self.c_above = [zeros() for _ in lstms]
        # Row i's gates from the row above (state-to-state) and the input bias.
        self.from_above = [zeros(4 * hid) + lstm.input_to_state.bias for lstm in lstms]
        views = lambda ts: [list(t.unbind(0)) for t in ts]  # noqa: E731  [k][j]: (n, .)
        self.h_at, self.c_at, self.c_above_at = views(self.h), views(self.c), views(self.c_above)
        self.from_above_at = views(self.from_above)

    def lstm_begin_row(self, k, lstm, i):
        if i == 0:
            return  # zero states above the image: the bias alone, as set at the start
        # Row i - 1's states are final: their state-to-state convolution, once a row.
        s2s = lstm.state_to_state(self.h[k].permute(1, 2, 0))  # (n, 4h, W)
        bias = lstm.input_to_state.bias
        self.from_above[k].copy_(s2s.permute(2, 0, 1)).add_(bias)
        self.c_above[k].copy_(self.c[k])

    def lstm_at(self, k, lstm, t, i, j):
        buf = self.in_bufs[k]
        buf.cell(i, j).copy_(t)
        gates = torch.addmm(self.from_above_at[k][j], buf.window(i, j), buf.matrix)
        h, c = lstm_update(gates, self.c_above_at[k][j])
        self.h_at[k][j].copy_(h)
        self.c_at[k][j].copy_(c)
        return h


class DiagonalBiLSTMStepper(PixelRNNStepper):
    """The Diagonal BiLSTM's states, per layer and direction.

    Left to right, the state at (i, j) reads the states at (i - 1, j) and (i, j - 1)
    and is computed at the pixel. Right to left (the flipped map), it reads those at
    (i - 1, j) and (i, j + 1), and its output is used one row down: row i - 1's is
    computed whole, right to left, when row i begins, from that row's layer inputs
    and image. Beside the first pixel of row r >= 1 (column 0, or W - 1 flipped) the
    skewed map holds padding, whose states do not depend on the image: the
    recurrence run on zero inputs (:func:`padding_states`).

    States are kept ``[W, n, h]``, one contiguous ``[n, h]`` per position, and each
    direction's gates are three matrix products (its input, the state above, the
    state beside) on them, the row-wise matrices split once at the start.
    """

    def __init__(self, model, x):
        super().__init__(model, x)
        n, w, hid = self.n, self.width, model.config.hidden
        rows = x.shape[2]
        lstms = [layer.lstm for layer in model.layers]
        self.padding = [padding_states(lstm, rows) for lstm in lstms]
        self.matrices = []  # [k][d]: (bias, from the layer input, from the image, above, beside)
        for lstm in lstms:
            weight, bias = lstm.input_weights()  # (2, 2h + C, 4h), (2, 4h)
            s2s = lstm.state_to_state  # (2, 2h, 4h): [above ; beside]
            self.matrices.append([
                (bias[d], weight[d, : 2 * hid], weight[d, 2 * hid :], s2s[d, :hid], s2s[d, hid:])
                for d in range(2)
            ])  # fmt: skip
        zeros = lambda maps=hid: self.like.new_zeros(w, n, maps)  # noqa: E731
        views = lambda t: list(t.unbind(0))  # noqa: E731  [j]: (n, maps)
        new = lambda maps=hid: [views(zeros(maps)) for _ in lstms]  # noqa: E731
        self.h_left, self.c_left = new(), new()  # row i so far (left to right)
        self.h_left_above = new()  # row i - 1
        self.h_right = new()  # row i - 1 (right to left), used at row i
        self.h_right_next, self.c_right = new(), new()  # the next one, being computed
        self.inputs = new(2 * hid)  # layer inputs, row i so far
        self.zero = self.like.new_zeros(n, hid)
        self.image_above: list[torch.Tensor] = []

    def begin_row(self, i):
        # Row i - 1 of the image, final (read by the right-to-left direction).
        self.image_above = list(self.image_row.permute(2, 0, 1).unbind(0))
        super().begin_row(i)

    def _beside(self, k: int, d: int, r: int, h: list, c: list, j: int):
        """The (h, c) ``[n, h]`` before column j in direction d: the neighbour's, or
        the padding's beside the row's first pixel."""
        if 0 <= j < self.width:
            return h[j], c[j]
        if r == 0:
            return self.zero, self.zero
        ph, pc = self.padding[k][r - 1]
        return ph[d].expand(self.n, -1), pc[d].expand(self.n, -1)

    def _update(self, k, d, inputs, image, above, beside):
        """Direction d's state from its inputs ``[n, 2h]`` and image ``[n, C]`` (None:
        not read) and its neighbours' states."""
        bias, from_inputs, from_image, from_above, from_beside = self.matrices[k][d]
        h_beside, c_beside = beside
        gates = torch.addmm(bias, inputs, from_inputs)
        if image is not None:
            gates.addmm_(image, from_image)
        gates.addmm_(above, from_above).addmm_(h_beside, from_beside)
        return lstm_update(gates, c_beside)

    def lstm_begin_row(self, k, lstm, i):
        r = i - 1  # the row now final
        if r >= 0:  # right to left over row i - 1, reading row i - 2's states above
            h, c, above = self.h_right_next[k], self.c_right[k], self.h_right[k]
            for j in reversed(range(self.width)):
                beside = self._beside(k, 1, r, h, c, j + 1)
                hj, cj = self._update(
                    k, 1, self.inputs[k][j], self.image_above[j], above[j], beside
                )
                h[j].copy_(hj)
                c[j].copy_(cj)
            self.h_right[k], self.h_right_next[k] = h, above
        # Row i - 1's left-to-right states become the row above (swapped, not copied:
        # every position of row i is written before it is read).
        self.h_left_above[k], self.h_left[k] = self.h_left[k], self.h_left_above[k]

    def lstm_at(self, k, lstm, t, i, j):
        self.inputs[k][j].copy_(t)
        beside = self._beside(k, 0, i, self.h_left[k], self.c_left[k], j - 1)
        h, c = self._update(k, 0, t, None, self.h_left_above[k][j], beside)
        self.h_left[k][j].copy_(h)
        self.c_left[k][j].copy_(c)
        return h.add_(self.h_right[k][j])  # the right-to-left output, one row down


def padding_states(lstm: DiagonalBiLSTM, rows: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(h, c)``, each ``[2, h]`` (both directions), of the skewed map's padding just
    before the first pixel of rows 1..H-1. The padding's inputs are zeros, and the
    padding state t columns before row r's first pixel reads the padding state t - 1
    both above and beside (zeros before column 0), whatever r: one recurrence."""
    _, bias = lstm.input_weights()
    h = c = bias.new_zeros(2, 1, lstm.hidden)
    out = []
    for _ in range(rows - 1):
        state = torch.cat([h, h], dim=-1)
        h, c = lstm_update(torch.baddbmm(bias[:, None], state, lstm.state_to_state), c)
        out.append((h[:, 0], c[:, 0]))
    return out


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

    def cached_stepper(self, x, cond=None):
        return RowLSTMStepper(self, x)


@register("diagonal_bilstm", config=PixelRNNConfig, presets=DIAGONAL_BILSTM_PRESETS)
class DiagonalBiLSTMModel(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers (van den Oord et al. 2016, §3.2): no blind spot."""

    def make_lstm(self, channels, hidden, groups):
        return DiagonalBiLSTM(channels, hidden, groups)

    def cached_stepper(self, x, cond=None):
        return DiagonalBiLSTMStepper(self, x)
