"""Intervals with known answers: coverage of the normal interval, Wilson's values, the
bootstrap's standard error, and the separation rule the report's reading uses."""

from __future__ import annotations

import math

import pytest
import torch

from pixelzoo.errors import InputError
from pixelzoo.evaluation.uncertainty import (
    Estimate,
    bootstrap,
    difference_excludes_zero,
    mean_estimate,
    paired_difference,
    separated,
    wilson,
)


def test_the_normal_interval_covers_the_mean_95_percent_of_the_time():
    g = torch.Generator().manual_seed(0)
    hits = 0
    for _ in range(1000):
        e = mean_estimate(torch.randn(200, generator=g, dtype=torch.float64) * 3 + 5)
        hits += e.low <= 5 <= e.high
    assert 0.93 <= hits / 1000 <= 0.97, hits  # 95% +- 2 standard errors of 1000 trials


def test_paired_differences_see_what_unpaired_intervals_cannot():
    """Two models scored on the same images: per-image scores vary a lot, their difference
    little. Unpaired intervals overlap; the paired one separates them."""
    g = torch.Generator().manual_seed(1)
    hardness = torch.randn(500, generator=g, dtype=torch.float64) * 20
    a = 90 + hardness + 0.1 * torch.randn(500, generator=g, dtype=torch.float64)
    b = a + 0.5  # b is worse by half a nat on every image
    assert not separated(mean_estimate(a), mean_estimate(b))
    d = paired_difference(b, a)
    assert difference_excludes_zero(d) and d.value == pytest.approx(0.5)
    same = paired_difference(a, a + 0.1 * torch.randn(500, generator=g, dtype=torch.float64))
    assert not difference_excludes_zero(same)
    with pytest.raises(InputError, match="same items"):
        paired_difference(a, b[:10])


def test_wilson_interval_known_values():
    e = wilson(0, 10)
    assert e.value == 0 and e.low == 0 and e.high == pytest.approx(0.2775, abs=1e-4)
    e = wilson(5, 10)
    assert e.low == pytest.approx(0.2366, abs=1e-4) and e.high == pytest.approx(0.7634, abs=1e-4)
    assert wilson(10, 10).high == pytest.approx(1.0) and wilson(10, 10).low == pytest.approx(
        0.7225, abs=1e-4
    )


def test_the_bootstrap_standard_error_of_a_mean_is_sd_over_root_n():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(400, generator=g, dtype=torch.float64) * 2

    def mean(w):
        return float((w * x).sum() / w.sum())

    e = bootstrap(mean, (400,), reps=400, seed=3)
    assert e.value == pytest.approx(float(x.mean()))
    assert e.half_width / 1.96 == pytest.approx(float(x.std()) / math.sqrt(400), rel=0.15)
    assert bootstrap(mean, (400,), reps=50, seed=3) == bootstrap(mean, (400,), reps=50, seed=3)


def test_separation_rule():
    a, b = Estimate(1.0, 0.9, 1.1, "normal", 10), Estimate(1.15, 1.05, 1.25, "normal", 10)
    c = Estimate(1.5, 1.4, 1.6, "normal", 10)
    assert not separated(a, b) and separated(a, c) and separated(c, a)
    assert not separated(a, Estimate(2.0, math.nan, math.nan, "bootstrap", 0))
