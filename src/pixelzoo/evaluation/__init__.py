"""Measurements of trained models."""

from pixelzoo.evaluation.nll import evaluate_nll

__all__ = ["evaluate_nll"]
