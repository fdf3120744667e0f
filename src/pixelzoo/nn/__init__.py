"""Building blocks shared by the models."""

from pixelzoo.nn.activations import tanh
from pixelzoo.nn.conditioning import ConditionInput, SpatialUpsampler, cond_projection
from pixelzoo.nn.dropout import Dropout
from pixelzoo.nn.gated import HorizontalStackConv, VerticalStackConv, gate
from pixelzoo.nn.lstm import lstm_update, shift_down, skew, unskew
from pixelzoo.nn.masked import MaskedConv2d, causal_mask, channel_groups, masked_output_layers
from pixelzoo.nn.shifted import GatedResnet, concat_elu, right_shift
from pixelzoo.nn.sizes import resolution_ladder

__all__ = [
    "ConditionInput",
    "Dropout",
    "GatedResnet",
    "HorizontalStackConv",
    "MaskedConv2d",
    "SpatialUpsampler",
    "VerticalStackConv",
    "causal_mask",
    "channel_groups",
    "concat_elu",
    "cond_projection",
    "gate",
    "lstm_update",
    "masked_output_layers",
    "resolution_ladder",
    "right_shift",
    "shift_down",
    "skew",
    "tanh",
    "unskew",
]
