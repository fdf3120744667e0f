"""Measurements of trained models."""

from pixelzoo.evaluation.features import feature_metrics
from pixelzoo.evaluation.msssim import ms_ssim, ms_ssim_diversity
from pixelzoo.evaluation.nll import evaluate_nll
from pixelzoo.evaluation.receptive_field import (
    ReceptiveField,
    plot_receptive_fields,
    receptive_field,
    receptive_fields,
)
from pixelzoo.evaluation.swd import swd

__all__ = [
    "ReceptiveField",
    "evaluate_nll",
    "feature_metrics",
    "ms_ssim",
    "ms_ssim_diversity",
    "plot_receptive_fields",
    "receptive_field",
    "receptive_fields",
    "swd",
]
