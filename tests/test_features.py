"""FID, KID and the Inception Score: known answers, torchmetrics' values, and their intervals."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from pixelzoo import data
from pixelzoo.errors import InputError
from pixelzoo.evaluation.features import (
    KernelDistance,
    extract,
    feature_metrics,
    frechet_distance,
    inception_score,
)
from pixelzoo.evaluation.uncertainty import separated


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

    def classify(self, features):
        return self.head(features)


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", "train").images.long()


def shifted(x, k):
    return (x + k).clamp(0, 16)


class Identity(nn.Module):
    """torchmetrics' feature extractor slot, handed feature vectors directly."""

    def __init__(self, d):
        super().__init__()
        self.num_features = d

    def forward(self, x):
        return x


def test_fid_and_kid_are_torchmetrics_values(digits):
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import poly_mmd

    net = SmallNet()
    a, b = (
        extract(net, digits[:300], 17).features,
        extract(net, shifted(digits[300:600], 2), 17).features,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tm = FrechetInceptionDistance(feature=Identity(16))
    tm.update(a, real=True)
    tm.update(b, real=False)
    assert frechet_distance(a, b) == pytest.approx(float(tm.compute()), rel=1e-9)
    # KID over all pairs is torchmetrics' unbiased MMD^2 of the whole sets.
    assert KernelDistance(a, b).mmd2() == pytest.approx(float(poly_mmd(a, b)), rel=1e-9)


def test_resampled_kid_leaves_out_an_item_with_its_copies():
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.randn(7, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 3, generator=g, dtype=torch.float64),
    )
    wa = torch.tensor([2.0, 0, 1, 3, 0, 1, 0], dtype=torch.float64)
    wb = torch.tensor([1.0, 1, 0, 2, 1], dtype=torch.float64)
    ia, ib = (
        torch.repeat_interleave(torch.arange(7), wa.long()),
        torch.repeat_interleave(torch.arange(5), wb.long()),
    )

    def k(x, y):
        return (x @ y.T / 3 + 1) ** 3

    def within(x, idx):  # the U-statistic over pairs of distinct draws
        kk = k(x[idx], x[idx])
        keep = idx[:, None] != idx[None, :]
        return kk[keep].mean()

    expected = within(a, ia) + within(b, ib) - 2 * k(a[ia], b[ib]).mean()
    assert KernelDistance(a, b).mmd2(wa, wb) == pytest.approx(float(expected), rel=1e-12)


def test_fid_is_zero_on_itself_grows_with_a_shift_and_ignores_batch_size(digits):
    net = SmallNet()
    same = feature_metrics(net, digits, digits, 17, reps=20)
    assert abs(same["fid"].value) < 1e-6
    fids = [
        feature_metrics(net, digits, shifted(digits, k), 17, reps=2)["fid"].value for k in (1, 3, 6)
    ]
    assert 0 < fids[0] < fids[1] < fids[2], fids
    a = feature_metrics(net, digits, shifted(digits, 2), 17, batch_size=7, reps=20)
    b = feature_metrics(net, digits, shifted(digits, 2), 17, batch_size=1000, reps=20)
    for key in ("fid", "kid", "inception_score"):
        assert a[key].value == pytest.approx(b[key].value, rel=1e-6)
        assert a[key].low == pytest.approx(b[key].low, rel=1e-6)  # the same resamples


def test_intervals_separate_a_worse_model_and_not_two_draws_of_one(digits):
    """Two disjoint draws of the digits against a third: not separated; a shifted set: separated."""
    net = SmallNet()
    g = torch.Generator().manual_seed(1)
    perm = torch.randperm(len(digits), generator=g)
    ref, one, two = digits[perm[:400]], digits[perm[400:800]], digits[perm[800:1200]]
    m1 = feature_metrics(net, ref, one, 17, reps=200, seed=1)
    m2 = feature_metrics(net, ref, two, 17, reps=200, seed=2)
    worse = feature_metrics(net, ref, shifted(two, 2), 17, reps=200, seed=3)
    for key in ("fid", "kid"):
        assert m1[key].low <= m1[key].value <= m1[key].high
        assert not separated(m1[key], m2[key]), (key, m1[key], m2[key])
        assert separated(m1[key], worse[key]), (key, m1[key], worse[key])
    # KID is unbiased: two samples of one distribution give an interval around 0.
    assert m1["kid"].low < 0 < m1["kid"].high


class OneHot(nn.Module):
    """Logits that put image k in class k mod N with certainty (features: its mean)."""

    num_features = 1

    def __init__(self, classes, confident=True):
        super().__init__()
        self.classes, self.confident = classes, confident
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, u):
        return torch.cat([u.flatten(1).mean(1, keepdim=True), u[:, 0, 0, :1]], 1)

    def classify(self, f):
        if not self.confident:
            return torch.zeros(len(f), self.classes)
        # The images carry their class in pixel (0, 0): level k for class k.
        k = torch.round((f[:, 1] + 1) * 8).long()
        return 50.0 * nn.functional.one_hot(k % self.classes, self.classes).float()


def test_inception_score_known_answers():
    x = torch.zeros(400, 1, 8, 8, dtype=torch.long)
    x[:, 0, 0, 0] = torch.arange(400) % 4  # four equally frequent classes
    sure = feature_metrics(OneHot(4), x, x, 17, reps=50)
    # p(y) is exactly uniform over the 4 classes, so IS = exp(log 4) = 4.
    assert sure["inception_score"].value == pytest.approx(4.0, rel=1e-6)
    unsure = feature_metrics(OneHot(4, False), x, x, 17, reps=5)
    assert unsure["inception_score"].value == pytest.approx(1.0, rel=1e-6)  # uniform p(y|x)
    probs = torch.eye(4, dtype=torch.float64)[torch.arange(8) % 4]
    w = torch.tensor([2.0, 0, 2, 0, 2, 0, 2, 0], dtype=torch.float64)  # classes 0 and 2 only
    assert inception_score(probs, w) == pytest.approx(2.0)


def test_feature_metric_errors(digits):
    with pytest.raises(InputError, match="integer images"):
        feature_metrics(SmallNet(), digits.float(), digits, 17)
    with pytest.raises(InputError, match="at least 2"):
        feature_metrics(SmallNet(), digits, digits[:1], 17)


def test_the_two_routes_to_fid_agree():
    """Fewer images than features (Inception's case) takes the N x M route; the value is the
    covariance route's."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(60, 100, generator=g, dtype=torch.float64)
    b = torch.randn(50, 100, generator=g, dtype=torch.float64) * 1.3 + 0.2
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    root = torch.linalg.eigvals(sa @ sb).sqrt().real.sum()
    expected = (a.mean(0) - b.mean(0)).square().sum() + sa.trace() + sb.trace() - 2 * root
    assert frechet_distance(a, b) == pytest.approx(float(expected), rel=1e-7)
    w = torch.ones(60, dtype=torch.float64)
    w[:10] = 0
    w[10:20] = 2  # a resample: the weighted set equals the expanded one
    expanded = torch.cat([a[10:20], a[10:]])
    assert frechet_distance(a, b, w) == pytest.approx(frechet_distance(expanded, b), rel=1e-9)
