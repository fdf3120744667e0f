"""Likelihood baselines a model must beat: uniform pixels and independent pixels.

* **uniform**: every sub-pixel equally likely, ``log2 K`` bits/dim (8 for 8-bit
  images): a model that learned nothing.
* **independent pixels**: each sub-pixel position (channel, row, column) has its
  own categorical distribution over the K levels, its training-set histogram with
  add-``alpha`` (Laplace) smoothing, and the sub-pixels are independent. It knows
  every position's marginal and no correlation between pixels, so a model below
  it has learned how pixels depend on each other, which is what the
  autoregressive models are for.

Both are exact likelihoods: the test figure comes with the same interval as a
model's (:func:`~pixelzoo.evaluation.uncertainty.mean_estimate` over test images).
"""

from __future__ import annotations

import math

import torch

from pixelzoo.evaluation.nll import bits_per_dim
from pixelzoo.evaluation.uncertainty import Estimate, mean_estimate


def uniform_bits_per_dim(levels: int) -> float:
    """Bits per sub-pixel of the uniform distribution over ``levels`` values."""
    return math.log2(levels)


def position_histograms(train, alpha: float = 1.0, chunk: int = 4096) -> torch.Tensor:
    """``[C*H*W, K]`` log-probabilities of each sub-pixel position's smoothed histogram."""
    dims, k = math.prod(train.image_shape), train.levels
    counts = torch.zeros(dims * k, dtype=torch.float64)
    offsets = torch.arange(dims) * k
    for idx in torch.arange(len(train)).split(chunk):
        x, _ = train.get_batch(idx)
        flat = (x.reshape(len(idx), dims) + offsets).flatten()
        counts += torch.bincount(flat, minlength=dims * k).double()
    counts = counts.view(dims, k) + alpha
    return (counts / counts.sum(1, keepdim=True)).log()


def independent_pixels_nll(train, test, alpha: float = 1.0, chunk: int = 4096) -> torch.Tensor:
    """``-log p(x)`` in nats of each test image under the independent-pixel model of ``train``."""
    log_p = position_histograms(train, alpha, chunk)
    dims = log_p.shape[0]
    out = []
    for idx in torch.arange(len(test)).split(chunk):
        x, _ = test.get_batch(idx)
        out.append(-log_p.gather(1, x.reshape(len(idx), dims).T).sum(0))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def independent_pixels_bits(train, test, alpha: float = 1.0) -> Estimate:
    """The independent-pixel baseline's test bits/dim with its 95% interval over test images."""
    dims = math.prod(test.image_shape)
    nats = mean_estimate(independent_pixels_nll(train, test, alpha))
    return Estimate(
        bits_per_dim(nats.value, dims),
        bits_per_dim(nats.low, dims),
        bits_per_dim(nats.high, dims),
        nats.method,
        nats.n,
    )


__all__ = [
    "independent_pixels_bits",
    "independent_pixels_nll",
    "position_histograms",
    "uniform_bits_per_dim",
]
