"""The likelihood baselines: exactly normalised, and the histogram they claim to be."""

from __future__ import annotations

import itertools
import math

import torch

from pixelzoo.data import ImageDataset
from pixelzoo.evaluation.baselines import (
    independent_pixels_bits,
    independent_pixels_nll,
    uniform_bits_per_dim,
)


def images(values, shape=(1, 1, 2), levels=3) -> ImageDataset:
    x = torch.tensor(values, dtype=torch.uint8).reshape(-1, *shape)
    return ImageDataset(x, levels=levels)


def test_independent_pixels_sum_to_one_over_every_image():
    train = images([[0, 2], [0, 1], [1, 1]])
    every = images(list(itertools.product(range(3), repeat=2)))  # all 9 images of 1x2, 3 levels
    p = (-independent_pixels_nll(train, every)).exp()
    assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-12)
    # Position 0 saw levels (0, 0, 1), position 1 (2, 1, 1): add-one histograms
    # (3/6, 2/6, 1/6) and (1/6, 3/6, 2/6); the image (0, 1) has probability 3/6 * 3/6.
    assert math.isclose(float(p[1]), 0.25, rel_tol=1e-12)


def test_baseline_figures_against_uniform():
    assert uniform_bits_per_dim(256) == 8.0 and uniform_bits_per_dim(2) == 1.0
    g = torch.Generator().manual_seed(0)

    def noise(n):
        return images(torch.randint(0, 256, (n, 3 * 4 * 4), generator=g).tolist(), (3, 4, 4), 256)

    # Uniform noise: the histograms learn nothing useful, the figure is about log2 256.
    b = independent_pixels_bits(noise(4000), noise(500))
    assert 8.0 <= b.low < b.value < b.high < 8.2
    # Constant images are nearly free once seen (with little smoothing: add-one gives the
    # 255 unseen levels 255/356 of the mass, 1.8 bits).
    const = images([[7] * 48] * 100, (3, 4, 4), 256)
    assert independent_pixels_bits(const, const, alpha=0.01).value < 0.05
    assert math.isclose(independent_pixels_bits(const, const).value, math.log2(356 / 101))
