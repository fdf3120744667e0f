"""Building blocks shared by the models."""

from pixelzoo.nn.lstm import lstm_update, shift_down, skew, unskew
from pixelzoo.nn.masked import MaskedConv2d, causal_mask, channel_groups, masked_output_layers

__all__ = [
    "MaskedConv2d",
    "causal_mask",
    "channel_groups",
    "lstm_update",
    "masked_output_layers",
    "shift_down",
    "skew",
    "unskew",
]
