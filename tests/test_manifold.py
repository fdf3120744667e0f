"""Precision/recall, density/coverage and memorization: prdc's values and known answers."""

from __future__ import annotations

import pytest

from pixelzoo import data
from pixelzoo.errors import InputError
from pixelzoo.evaluation.manifold import memorization, precision_recall_density_coverage

prdc = pytest.importorskip("prdc", reason="prdc (a test dependency) checks the k-NN metrics")


@pytest.fixture(scope="module")
def digits():
    """Digits as flat pixel vectors (a feature space where the classes are real structure)."""
    train, test = data.load("digits", "train"), data.load("digits", "test")
    return train.images.flatten(1).double(), train.labels, test.images.flatten(1).double()


def test_the_four_figures_are_prdcs(digits):
    x, _, y = digits
    ours = precision_recall_density_coverage(x[:500], y[:300], k=3)
    theirs = prdc.compute_prdc(x[:500].numpy(), y[:300].numpy(), 3)
    for key in ("precision", "recall", "density", "coverage"):
        assert ours[key].value == pytest.approx(float(theirs[key]), abs=1e-12), key
        assert ours[key].low <= ours[key].value <= ours[key].high


def test_known_answers(digits):
    x, labels, y = digits
    same = precision_recall_density_coverage(x, x)
    assert same["precision"].value == same["recall"].value == same["coverage"].value == 1.0
    assert same["density"].value == pytest.approx(1.0, abs=0.15)
    # A "generator" that drops half the classes: recall and coverage fall, precision does not.
    half = x[labels < 5][:400]
    dropped = precision_recall_density_coverage(y, half)
    full = precision_recall_density_coverage(y, x[:400])
    assert dropped["precision"].value > 0.9 * full["precision"].value
    assert dropped["recall"].high < full["recall"].low
    assert dropped["coverage"].high < full["coverage"].low and dropped["coverage"].value < 0.7
    # Disjoint sets: nothing of one lies in the other's manifold.
    far = precision_recall_density_coverage(x[:200], x[:200] + 1000.0)
    assert all(far[k].value == 0 for k in ("precision", "recall", "density", "coverage"))
    with pytest.raises(InputError, match="needs more than 3 points"):
        precision_recall_density_coverage(x[:3], y)


def test_memorization_flags_a_generator_that_returns_training_images(digits):
    x, _, y = digits
    images = data.load("digits", "train").images
    copier = memorization(x, y, x[:300], train_images=images, fake_images=images[:300])
    assert copier["memorized"].value == 1.0 and copier["exact_copies"] == 300
    # Held-out images behave like a model that generalises: about the 5% quantile.
    honest = memorization(
        x, y, y, train_images=images, fake_images=data.load("digits", "test").images
    )
    assert honest["memorized"].low <= 0.05 <= honest["memorized"].high
    assert copier["memorized"].low > honest["memorized"].high and honest["exact_copies"] == 0
