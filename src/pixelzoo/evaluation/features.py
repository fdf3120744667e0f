"""Feature-network metrics: FID, KID and the Inception Score, each with a 95% interval.

- FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the
  feature vectors of real and generated images.
- KID (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial
  kernel ``k(x, y) = (x.y / d + 1)^3``, here over all pairs of the two sets (the
  minimum-variance unbiased estimate; torchmetrics averages it over random subsets).
  NOTE: the kernel was designed for Inception's pooled features (values about
  0..1); the evaluator's features are not normalised (binarized-MNIST evaluator:
  mean 1.9, up to 43), so a few images with large features dominate the cubic
  kernel and KID is heavy-tailed: real train against real test images gave 16,077
  on the first 1,000 of each and 5,820 on the next 1,000, far outside the first's
  bootstrap interval (+-1,190). At 5,000 images the two halves agree better
  (1,553 and 1,393). Read KID at small sample sizes with that in mind.
- Inception Score (Salimans et al. 2016): ``exp E_x KL(p(y | x) || p(y))`` over all
  generated images (one split: the paper's ten splits of 5,000 images would be
  ten splits of 100 here, each biased low).

The feature network is any ``nn.Module`` with an integer ``num_features``, a
``forward(u) -> [B, num_features]`` on images in [-1, 1] and a ``logits(u) ->
[B, classes]`` (for the Inception Score): pixelzoo's own evaluator classifier for
digit-like data, or Inception-v3 for natural images. Every image is put through
the network once (:func:`extract`); the statistics are then functions of the
feature vectors and of resampling weights, so the bootstrap of
:mod:`pixelzoo.evaluation.uncertainty` (generated and reference images both
resampled) costs no further network passes. Sums are float64; nothing depends
on the batch size. The FID and KID formulas are checked against torchmetrics'
to 1e-9 in the tests; they are written here, as functions of weights, because
torchmetrics' metrics take images, not resampled sets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelzoo.data.base import check_image_set, to_unit
from pixelzoo.errors import InputError
from pixelzoo.evaluation.uncertainty import Estimate, bootstrap


@dataclass
class FeatureSet:
    """A set of images through the feature network: features ``[N, D]`` and class
    probabilities ``[N, K]`` (float64, on the CPU)."""

    features: torch.Tensor
    probs: torch.Tensor

    def __len__(self) -> int:
        return len(self.features)


@torch.no_grad()
def extract(net: nn.Module, x: torch.Tensor, levels: int, batch_size: int = 500) -> FeatureSet:
    """Feature vectors and class probabilities of integer images ``x`` with ``levels`` values."""
    check_image_set(x, "images")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    feats, probs = [], []
    try:
        for b in x.split(batch_size):
            u = to_unit(b, levels).to(device)
            f = net(u)
            feats.append(f.double().cpu())
            probs.append(torch.softmax(net.classify(f).double(), 1).cpu())
    finally:
        net.train(was_training)
    if not feats:
        raise InputError("feature metrics need at least one image")
    return FeatureSet(torch.cat(feats), torch.cat(probs))


def _centred(f: torch.Tensor, w: torch.Tensor):
    """The weighted mean and ``Y`` with ``Y^T Y`` the unbiased covariance (rows scaled by
    ``sqrt(w / (n - 1))``; items drawn 0 times drop out)."""
    keep = w > 0
    f, w = f[keep], w[keep]
    n = float(w.sum())
    mu = (w[:, None] * f).sum(0) / n
    return mu, (f - mu) * (w / (n - 1)).sqrt()[:, None]


def frechet_distance(a: torch.Tensor, b: torch.Tensor, wa=None, wb=None) -> float:
    """FID between feature sets ``a [N, D]`` and ``b [M, D]`` (optionally resampled by weights).

    ``|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr sqrt(S_a S_b)``. The trace of the square
    root is the sum of the square roots of the eigenvalues of ``S_a S_b``, as torchmetrics
    computes it, or, when the sets are smaller than the features are long (Inception's
    2048), the same number as the nuclear norm of ``Y_a Y_b^T`` (``S = Y^T Y``), an
    ``N x M`` problem instead of ``D x D``: ten times faster for 1,000 images.
    """
    wa = torch.ones(len(a), dtype=torch.float64) if wa is None else wa
    wb = torch.ones(len(b), dtype=torch.float64) if wb is None else wb
    mu_a, ya = _centred(a.double(), wa)
    mu_b, yb = _centred(b.double(), wb)
    d = a.shape[1]
    if len(ya) * len(yb) < d * d:
        root = torch.linalg.svdvals(ya @ yb.T).sum()
    else:
        root = torch.linalg.eigvals((ya.T @ ya) @ (yb.T @ yb)).sqrt().real.sum()
    trace = ya.square().sum() + yb.square().sum()
    return float((mu_a - mu_b).square().sum() + trace - 2 * root)


class KernelDistance:
    """KID's kernel matrices of two feature sets, then the unbiased MMD^2 for any weights.

    With weights (how often each item was drawn), the within-set terms leave out
    the pairs of an item with itself and with its copies, so a resampled set is
    scored as the unbiased U-statistic of its distinct draws.
    """

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        d = a.shape[1]
        self.kaa = (a @ a.T / d + 1) ** 3
        self.kbb = (b @ b.T / d + 1) ** 3
        self.kab = (a @ b.T / d + 1) ** 3

    @staticmethod
    def _within(k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n = w.sum()
        return (w @ k @ w - (w.square() * k.diagonal()).sum()) / (n * n - w.square().sum())

    def mmd2(self, wa=None, wb=None) -> float:
        wa = torch.ones(len(self.kaa), dtype=torch.float64) if wa is None else wa
        wb = torch.ones(len(self.kbb), dtype=torch.float64) if wb is None else wb
        cross = wa @ self.kab @ wb / (wa.sum() * wb.sum())
        return float(self._within(self.kaa, wa) + self._within(self.kbb, wb) - 2 * cross)


def inception_score(probs: torch.Tensor, w=None) -> float:
    """``exp E_x KL(p(y | x) || p(y))`` with p(y) the (weighted) mean of the class probabilities."""
    w = torch.ones(len(probs), dtype=torch.float64) if w is None else w
    n = w.sum()
    marginal = (w[:, None] * probs).sum(0) / n
    logp = probs.clamp_min(1e-300).log()
    kl = (probs * (logp - marginal.clamp_min(1e-300).log())).sum(1)
    return float(torch.exp((w * kl).sum() / n))


def feature_metrics(
    net: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    levels: int,
    *,
    batch_size: int = 500,
    reps: int = 200,
    seed: int = 0,
    real_set: FeatureSet | None = None,
) -> dict:
    """FID, KID and the Inception Score of ``fake`` against ``real``, each an :class:`Estimate`.

    Returns ``{"fid", "kid", "inception_score": Estimate, "real_images", "fake_images",
    "fake_set": FeatureSet}``. Intervals: estimate +- 1.96 bootstrap standard errors over both sets
    (``reps`` resamples from ``seed``); the Inception Score resamples ``fake`` only.
    ``real_set`` reuses the reference images' features.
    """
    for name, t in (("real", real), ("fake", fake)):
        check_image_set(t, name)
        if len(t) < 2:
            raise InputError(f"{name} needs at least 2 images, got {len(t)}")
    r = real_set if real_set is not None else extract(net, real, levels, batch_size)
    f = extract(net, fake, levels, batch_size)
    kernel = KernelDistance(r.features, f.features)
    sizes = (len(r), len(f))
    fid = bootstrap(
        lambda wr, wf: frechet_distance(r.features, f.features, wr, wf), sizes, reps, seed
    )
    kid = bootstrap(kernel.mmd2, sizes, reps, seed + 1)
    score = bootstrap(lambda wf: inception_score(f.probs, wf), (len(f),), reps, seed + 2)
    return {
        "fid": fid,
        "kid": kid,
        "inception_score": score,
        "real_images": len(r),
        "fake_images": len(f),
        "fake_set": f,
        "real_set": r,
    }


def estimates_to_json(values: dict) -> dict:
    """``{key: Estimate}`` as the record's ``key`` (the value) and ``key_ci`` ([low, high])."""
    out = {}
    for key, v in values.items():
        if isinstance(v, Estimate):
            out[key], out[f"{key}_ci"] = v.value, [v.low, v.high]
    return out
