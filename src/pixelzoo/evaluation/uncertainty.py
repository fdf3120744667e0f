"""How sure a figure is: 95% intervals, and whether two figures are separated.

Every number the comparison report prints carries an :class:`Estimate`: the
value, a 95% interval and how the interval was obtained, because the right way
differs by metric:

* **means over independent items** (an NLL over test images, an AIS estimate
  over images, MS-SSIM over random pairs, precision/recall/density/coverage
  over samples with the reference manifold held fixed): the normal interval
  ``mean +- 1.96 sd / sqrt(n)`` (:func:`mean_estimate`), and for two models
  scored on the same items the paired difference (:func:`paired_difference`);
* **fractions** (memorized samples, precision, recall, coverage): the Wilson score
  interval (:func:`wilson`);
* **costly set statistics** (SWD): the spread of the statistic over m disjoint
  parts of the sets, ``t_{m-1} sd / sqrt(m)`` (:func:`parts_estimate`);
* **set statistics** (FID, KID, the Inception Score, mode counts and their KL):
  the bootstrap, resampling the generated and the reference images with
  replacement (:func:`bootstrap`; Efron & Tibshirani 1993, ch. 6): the interval
  is the estimate +- 1.96 bootstrap standard errors. Each statistic is given
  resampling *weights* (how often each item was drawn), so that a U-statistic
  such as KID can leave out the pairs of an item with its own copy. NOTE: not
  the percentile interval: FID is biased upward at small sample sizes, and a
  resample of n with replacement holds only about 0.63 n distinct images, so the
  resampled FIDs sit above the estimate and their percentiles can miss it; the
  standard error measures the spread, and the bias is stated in the report.

:func:`separated` is the reading's rule: two figures are ranked only when their
intervals do not overlap (or, for paired figures, when the interval of the
difference excludes 0); otherwise they are "not separated".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pixelzoo.errors import InputError

Z95 = 1.959963984540054  # the 97.5% point of the standard normal


@dataclass(frozen=True)
class Estimate:
    """A figure, its 95% interval, and what the interval is over.

    Attributes:
        value: the point estimate (computed on all the data).
        low, high: the 95% interval.
        method: "normal" (a mean over ``n`` items), "paired" (a mean difference),
            "wilson" (a fraction), "bootstrap" (``n`` resamples) or "exact" (none).
        n: the items the interval is over (images, pairs, samples) or resamples.
    """

    value: float
    low: float
    high: float
    method: str
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_json(self) -> dict:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method,
                "n": self.n}  # fmt: skip


def mean_estimate(values) -> Estimate:
    """The mean of ``values`` (independent items) with its normal 95% interval."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    n = len(v)
    if n == 0:
        raise InputError("an estimate needs at least one value")
    mean = float(v.mean())
    se = float(v.std(unbiased=True)) / math.sqrt(n) if n > 1 else math.inf
    return Estimate(mean, mean - Z95 * se, mean + Z95 * se, "normal", n)


def paired_difference(a, b) -> Estimate:
    """``mean(a - b)`` over the same items, with its normal 95% interval."""
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    if a.shape != b.shape:
        raise InputError(f"paired values need the same items, got {len(a)} and {len(b)}")
    d = mean_estimate(a - b)
    return Estimate(d.value, d.low, d.high, "paired", d.n)


def wilson(successes: int, n: int) -> Estimate:
    """The fraction ``successes / n`` with its Wilson score 95% interval (good near 0 and 1)."""
    if n < 1:
        raise InputError("a fraction needs at least one trial")
    p = successes / n
    z2 = Z95**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the ends, not 1e-17
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Estimate(p, low, high, "wilson", n)


def resampling_weights(n: int, reps: int, generator: torch.Generator) -> torch.Tensor:
    """``[reps, n]`` bootstrap weights: how many times each of ``n`` items is drawn (sum n)."""
    idx = torch.randint(0, n, (reps, n), generator=generator)
    w = torch.zeros(reps, n, dtype=torch.float64)
    return w.scatter_add_(1, idx, torch.ones(reps, n, dtype=torch.float64))


def bootstrap(statistic, sizes: tuple[int, ...], reps: int = 200, seed: int = 0) -> Estimate:
    """``statistic`` on the data, +- 1.96 bootstrap standard errors (see the module docstring).

    Args:
        statistic: a function of one weight vector per data set (``[n_k]`` float64,
            how often each item was drawn; all ones for the data themselves) to a float.
        sizes: the number of items of each data set (generated, reference, ...).
        reps: resamples (200 estimate a standard error to about 5%).
        seed: the resamples' seed (the same seed, the same interval).
    """
    value = float(statistic(*[torch.ones(n, dtype=torch.float64) for n in sizes]))
    g = torch.Generator().manual_seed(seed)
    draws = [resampling_weights(n, reps, g) for n in sizes]
    stats = torch.tensor([float(statistic(*[d[r] for d in draws])) for r in range(reps)])
    stats = stats[torch.isfinite(stats)].double()
    if len(stats) < 2:
        return Estimate(value, math.nan, math.nan, "bootstrap", reps)
    se = float(stats.std(unbiased=True))
    return Estimate(value, value - Z95 * se, value + Z95 * se, "bootstrap", reps)


def parts_estimate(value: float, parts) -> Estimate:
    """``value`` (a statistic of a whole set) with an interval from its values on disjoint parts.

    For statistics too costly to bootstrap (SWD): the set is cut into m disjoint
    parts, the statistic computed on each, and the whole-set standard error taken
    as ``sd(parts) / sqrt(m)``, with Student's t on m - 1 degrees of freedom.
    """
    from scipy.stats import t as student_t

    v = torch.as_tensor(parts, dtype=torch.float64)
    m = len(v)
    if m < 2:
        return Estimate(value, math.nan, math.nan, "parts", m)
    half = float(student_t.ppf(0.975, m - 1)) * float(v.std(unbiased=True)) / math.sqrt(m)
    return Estimate(value, value - half, value + half, "parts", m)


def separated(a: Estimate, b: Estimate) -> bool:
    """Whether two figures are told apart: their 95% intervals do not overlap.

    (Disjoint 95% intervals are a conservative test, about 0.6% two-sided for
    normal estimates of equal width.) For a paired difference, pass it with
    :func:`difference_excludes_zero` instead.
    """
    if any(math.isnan(v) for v in (a.low, a.high, b.low, b.high)):
        return False
    return a.high < b.low or b.high < a.low


def difference_excludes_zero(d: Estimate) -> bool:
    """Whether a paired difference is told apart from 0."""
    return not math.isnan(d.low) and (d.low > 0 or d.high < 0)
