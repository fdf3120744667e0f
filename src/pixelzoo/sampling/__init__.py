"""Sampling from autoregressive models: naive ancestral sampling and completion."""

from pixelzoo.sampling.naive import complete, sample

__all__ = ["complete", "sample"]
