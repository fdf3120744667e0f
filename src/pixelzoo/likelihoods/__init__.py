"""Per-pixel output distributions.

A likelihood turns the network's output ``params [B, P, H, W]`` into per-sub-pixel
log-probabilities ``[B, C, H, W]`` and draws sub-pixels from it. ``P`` is
:attr:`num_params`; parameters of colour channel c occupy a contiguous block of
``P // C`` channels, matching the colour groups of the masked convolutions.

Sampling takes uniforms ``u`` drawn by the caller from its generator and inverts
the CDF, so a sampler consumes a fixed number of uniforms per pixel and image
(one per sub-pixel; ``1 + C`` for the logistic mixture, which draws a whole pixel):
two samplers that see the same parameters and the same generator give the same
images.
"""

from pixelzoo.likelihoods.discrete import (
    Bernoulli,
    Categorical,
    PixelLikelihood,
    SubpixelSoftmax,
    for_levels,
)
from pixelzoo.likelihoods.logistic import DiscretizedLogisticMixture

__all__ = [
    "Bernoulli",
    "Categorical",
    "DiscretizedLogisticMixture",
    "PixelLikelihood",
    "SubpixelSoftmax",
    "for_levels",
]
