"""Measurements of trained models."""

from pixelzoo.evaluation.nll import evaluate_nll
from pixelzoo.evaluation.receptive_field import (
    ReceptiveField,
    plot_receptive_fields,
    receptive_field,
)
from pixelzoo.evaluation.swd import swd

__all__ = ["ReceptiveField", "evaluate_nll", "plot_receptive_fields", "receptive_field", "swd"]
