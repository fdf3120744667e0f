"""Sampling from autoregressive models: ancestral sampling and completion, naive or cached.

The driver (:mod:`pixelzoo.sampling.ancestral`) is written once for every
model; how the network is evaluated at each draw is a stepper's business
(:mod:`pixelzoo.sampling.steppers`), and each model with a cached sampler owns
its stepper (``model.cached_stepper``). :mod:`pixelzoo.sampling.grids` lays out
completions and reconstructions for viewing.
"""

from pixelzoo.sampling.ancestral import SAMPLERS, complete, fill, sample
from pixelzoo.sampling.steppers import Buffer, NaiveStepper

__all__ = ["SAMPLERS", "Buffer", "NaiveStepper", "complete", "fill", "sample"]
