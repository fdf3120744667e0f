"""Fidelity, diversity and memorization, measured apart, in a feature space.

- **Improved precision and recall** (Kynkaanniemi, Karras, Laine, Lehtinen, Aila
  2019, §2): the real manifold is the union of balls around each real feature
  vector reaching its k-th nearest real neighbour (k = 3). Precision is the
  fraction of generated samples inside the real manifold (fidelity), recall the
  fraction of real images inside the generated manifold (diversity).
- **Density and coverage** (Naeem, Oh, Uh, Choi, Yoo 2020, §3): density counts,
  per sample, how many real balls contain it, divided by k (about 1 when samples
  follow the data; above 1 when they crowd into dense regions); coverage is the
  fraction of real images whose ball contains at least one sample (robust to
  outlying samples, unlike recall).
- **Memorization**: each sample's distance to its nearest *training* image,
  against the same distance for held-out *test* images. A sample closer to the
  training set than the 5th percentile of test images is flagged; a model that
  generalises flags about 5% of its samples, one that copies its training set
  far more. Samples identical to a training image, pixel for pixel, are counted
  apart (exact copies).

The comparisons use strict inequalities, as the reference code of Naeem et al.
(the ``prdc`` package) does; the tests check every figure against ``prdc``. It
is written here because the report needs each sample's indicator (for the
intervals: Wilson intervals over the samples for the three fractions, a normal
interval for density, with the manifolds held fixed) and ``prdc`` returns only
the means.
"""

from __future__ import annotations

import torch

from pixelzoo.errors import InputError
from pixelzoo.evaluation.uncertainty import Estimate, mean_estimate, wilson


def _distances(a: torch.Tensor, b: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Euclidean distances ``[len(a), len(b)]`` in float64."""
    return torch.cat([torch.cdist(p, b.double()) for p in a.double().split(chunk)])


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    if len(x) <= k:
        raise InputError(f"a k-NN manifold with k={k} needs more than {k} points, got {len(x)}")
    d = _distances(x, x)
    return d.kthvalue(k + 1, dim=1).values  # the point itself is at distance 0


def precision_recall_density_coverage(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict:
    """Improved precision/recall and density/coverage of feature sets ``real`` and ``fake``.

    Returns ``{"precision", "recall", "density", "coverage": Estimate, "k": k}``.
    """
    r_radii, f_radii = knn_radii(real, k), knn_radii(fake, k)
    d = _distances(real, fake)  # [n_real, n_fake]
    inside_real = d < r_radii[:, None]  # fake j inside real i's ball
    precision_hits = inside_real.any(0)  # per fake
    recall_hits = (d < f_radii[None, :]).any(1)  # per real
    density = inside_real.double().sum(0) / k  # per fake
    coverage_hits = d.min(1).values < r_radii  # per real
    return {
        "precision": wilson(int(precision_hits.sum()), len(fake)),
        "recall": wilson(int(recall_hits.sum()), len(real)),
        "density": mean_estimate(density),
        "coverage": wilson(int(coverage_hits.sum()), len(real)),
        "k": k,
    }


def nearest(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 1024):
    """For each query, the distance to its nearest pool row and that row's index."""
    dists, index = [], []
    for q in queries.double().split(chunk):
        d = torch.cdist(q, pool.double())
        m = d.min(1)
        dists.append(m.values)
        index.append(m.indices)
    return torch.cat(dists), torch.cat(index)


def memorization(
    train: torch.Tensor,
    test: torch.Tensor,
    fake: torch.Tensor,
    *,
    quantile: float = 0.05,
    train_images: torch.Tensor | None = None,
    fake_images: torch.Tensor | None = None,
) -> dict:
    """How close samples come to the training set, against held-out test images.

    Args:
        train, test, fake: feature vectors of training images, test images, samples.
        quantile: the test images' distance quantile that flags a sample.
        train_images, fake_images: the integer images themselves, to count exact copies.

    Returns ``{"memorized": Estimate (fraction of samples below the threshold),
    "threshold", "exact_copies", "nearest": (distance, training index) per sample}``.
    """
    if not 0 < quantile < 1:
        raise InputError(f"quantile must be in (0, 1), got {quantile}")
    test_d, _ = nearest(test, train)
    threshold = float(torch.quantile(test_d, quantile))
    fake_d, fake_i = nearest(fake, train)
    flagged = int((fake_d < threshold).sum())
    copies = None
    if train_images is not None and fake_images is not None:
        seen = {bytes(x.to(torch.uint8).numpy().tobytes()) for x in train_images}
        copies = sum(bytes(x.to(torch.uint8).numpy().tobytes()) in seen for x in fake_images)
    return {
        "memorized": wilson(flagged, len(fake)),
        "threshold": threshold,
        "quantile": quantile,
        "exact_copies": copies,
        "nearest": (fake_d, fake_i),
    }


def estimate_dict(result: dict) -> dict[str, Estimate]:
    """The :class:`Estimate` entries of a result dict."""
    return {k: v for k, v in result.items() if isinstance(v, Estimate)}
