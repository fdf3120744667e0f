"""FID, KID and Inception Score with known answers, on a fixed feature network."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pixelzoo import data
from pixelzoo.errors import InputError
from pixelzoo.evaluation.features import feature_metrics


class SmallNet(nn.Module):
    """A fixed random convolutional feature map with a linear classifier head."""

    num_features = 16

    def __init__(self, classes: int = 10):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(64, 16),
            nn.Tanh(),
        )
        self.head = nn.Linear(16, classes)

    def forward(self, u):
        return self.body(u)

    def logits(self, u):
        return self.head(self.body(u))


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train").images.long()


def shifted(x, k):
    return (x + k).clamp(0, 16)


def test_fid_is_zero_on_itself_grows_with_a_shift_and_ignores_batch_size(digits):
    net = SmallNet()
    same = feature_metrics(net, digits, digits, 17, kid_subset_size=200, kid_subsets=10)
    assert abs(same["fid"]) < 1e-6
    fids = [
        feature_metrics(net, digits, shifted(digits, k), 17, kid_subsets=5)["fid"]
        for k in (1, 3, 6)
    ]
    assert 0 < fids[0] < fids[1] < fids[2], fids
    a = feature_metrics(
        net, digits, shifted(digits, 2), 17, batch_size=7, kid_subset_size=300, kid_subsets=20
    )
    b = feature_metrics(
        net, digits, shifted(digits, 2), 17, batch_size=1000, kid_subset_size=300, kid_subsets=20
    )
    assert a["fid"] == pytest.approx(b["fid"], rel=1e-6)  # float64 sums in another order
    assert a["kid"] == pytest.approx(b["kid"], rel=1e-6)  # the same subsets from the same seed


def test_kid_is_unbiased_on_one_distribution_and_positive_across_two(digits):
    net = SmallNet()
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(digits), generator=g)
    first, second = digits[perm[:600]], digits[perm[600:1200]]
    same = feature_metrics(net, first, second, 17, kid_subset_size=300, kid_subsets=100)
    # Unbiased: two samples of one distribution give KID near 0, negative values allowed.
    assert abs(same["kid"]) < 3 * same["kid_std"] / math.sqrt(10) + 1e-6, same
    other = feature_metrics(
        net, first, shifted(second, 3), 17, kid_subset_size=300, kid_subsets=100
    )
    assert other["kid"] > 10 * abs(same["kid"]) and other["kid"] > 3 * other["kid_std"] / 10


class OneHot(nn.Module):
    """Logits that put image k in class k mod N with certainty (features: its mean)."""

    num_features = 1

    def __init__(self, classes, confident=True):
        super().__init__()
        self.classes, self.confident = classes, confident
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, u):
        return u.flatten(1).mean(1, keepdim=True)

    def logits(self, u):
        if not self.confident:
            return torch.zeros(len(u), self.classes)
        # The images carry their class in pixel (0, 0): level k for class k.
        k = torch.round((u[:, 0, 0, 0] + 1) * 8).long()
        return 50.0 * nn.functional.one_hot(k % self.classes, self.classes).float()


def test_inception_score_known_answers():
    x = torch.zeros(400, 1, 8, 8, dtype=torch.long)
    x[:, 0, 0, 0] = torch.arange(400) % 4  # four equally frequent classes
    sure = feature_metrics(OneHot(4), x, x, 17, is_splits=1, kid_subset_size=50, kid_subsets=2)
    # One split: p(y) is exactly uniform over the 4 classes, so IS = exp(log 4) = 4.
    assert sure["inception_score"] == pytest.approx(4.0, rel=1e-6)
    unsure = feature_metrics(
        OneHot(4, False), x, x, 17, is_splits=1, kid_subset_size=50, kid_subsets=2
    )
    assert unsure["inception_score"] == pytest.approx(1.0, rel=1e-6)  # uniform p(y|x)


def test_feature_metric_errors(digits):
    with pytest.raises(InputError, match="integer images"):
        feature_metrics(SmallNet(), digits.float(), digits, 17)
    with pytest.raises(InputError, match="at least 2"):
        feature_metrics(SmallNet(), digits, digits[:1], 17)
