"""Building blocks shared by the models."""

from pixelzoo.nn.conditioning import ConditionInput, SpatialUpsampler, cond_projection
from pixelzoo.nn.gated import HorizontalStackConv, VerticalStackConv, gate
from pixelzoo.nn.lstm import lstm_update, shift_down, skew, unskew
from pixelzoo.nn.masked import MaskedConv2d, causal_mask, channel_groups, masked_output_layers

__all__ = [
    "ConditionInput",
    "HorizontalStackConv",
    "MaskedConv2d",
    "SpatialUpsampler",
    "VerticalStackConv",
    "causal_mask",
    "channel_groups",
    "cond_projection",
    "gate",
    "lstm_update",
    "masked_output_layers",
    "shift_down",
    "skew",
    "unskew",
]
