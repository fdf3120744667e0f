"""Sampling from autoregressive models: ancestral sampling and completion, naive or cached."""

from pixelzoo.sampling.ancestral import SAMPLERS, complete, fill, sample
from pixelzoo.sampling.cached import cached_stepper

__all__ = ["SAMPLERS", "cached_stepper", "complete", "fill", "sample"]
