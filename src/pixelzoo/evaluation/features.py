"""Feature-network metrics: FID, KID and Inception Score, with torchmetrics' math.

- FID (Heusel et al. 2017): the Frechet distance between Gaussians fitted to the
  feature vectors of real and generated images.
- KID (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial
  kernel, averaged over random subsets (mean and standard deviation).
- Inception Score (Salimans et al. 2016): exp E_x KL(p(y | x) || p(y)) from the
  network's class logits, mean and standard deviation over splits.

The feature network is any ``nn.Module`` with an integer ``num_features``, a
``forward(u) -> [B, num_features]`` on images in [-1, 1] and a ``logits(u) ->
[B, classes]`` (for the Inception Score): pixelzoo's own evaluator classifier for
digit-like data, or Inception-v3 for natural images (issue 7). Statistics are
accumulated in float64 as sums over images, so FID does not depend on the batch
size; KID keeps every feature vector and draws its subsets from ``seed``, so it
does not either.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance

from pixelzoo.data.base import check_image_set, to_unit
from pixelzoo.errors import InputError


class _OnIntegerImages(nn.Module):
    """Adapter for torchmetrics: integer images -> the network's features or logits (float64)."""

    def __init__(self, net: nn.Module, levels: int, output: str):
        super().__init__()
        self.net, self.levels, self.output = net, levels, output
        self.num_features = int(net.num_features)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = to_unit(x, self.levels).to(next(self.net.parameters()).device)
        out = self.net(u) if self.output == "features" else self.net.logits(u)
        return out.double().cpu()


def _batches(x: torch.Tensor, size: int):
    return x.split(size) if len(x) else []


def feature_metrics(
    net: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    levels: int,
    *,
    batch_size: int = 500,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    is_splits: int = 10,
    seed: int = 0,
) -> dict:
    """FID, KID (mean, std) and the Inception Score (mean, std) of ``fake`` against ``real``.

    ``real`` and ``fake`` are integer images with ``levels`` values; the Inception
    Score is computed on ``fake`` only. KID's subset size is capped at the smaller
    set's size.
    """
    for name, t in (("real", real), ("fake", fake)):
        check_image_set(t, name)
        if len(t) < 2:
            raise InputError(f"{name} needs at least 2 images, got {len(t)}")
    was_training = net.training
    net.eval()
    features = _OnIntegerImages(net, levels, "features")
    subset = min(kid_subset_size, len(real), len(fake))
    with warnings.catch_warnings():  # "will save all extracted features": that is intended
        warnings.simplefilter("ignore", UserWarning)
        fid = FrechetInceptionDistance(feature=features)
        kid = KernelInceptionDistance(feature=features, subsets=kid_subsets, subset_size=subset)
        score = InceptionScore(feature=_OnIntegerImages(net, levels, "logits"), splits=is_splits)
    try:
        for x in _batches(real, batch_size):
            fid.update(x, real=True)
            kid.update(x, real=True)
        for x in _batches(fake, batch_size):
            fid.update(x, real=False)
            kid.update(x, real=False)
            score.update(x)
        with torch.random.fork_rng(devices=[]):  # KID's subsets and IS's split order
            torch.manual_seed(seed)
            kid_mean, kid_std = kid.compute()
            is_mean, is_std = score.compute()
        return {
            "fid": float(fid.compute()),
            "kid": float(kid_mean),
            "kid_std": float(kid_std),
            "kid_subset_size": subset,
            "inception_score": float(is_mean),
            "inception_score_std": float(is_std),
            "real_images": len(real),
            "fake_images": len(fake),
        }
    finally:
        net.train(was_training)
