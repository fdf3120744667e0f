"""Every colour family learns on real natural images (the shared cifar10-jpeg folder).

A short run (40 steps of 16 images, a few minutes of CPU in all) of each family's
``cifar10_cpu`` preset at 256 levels. Likelihood models must end, on 200 test
images, below the independent-pixel baseline (every sub-pixel position's own
histogram: what a model knows before it learns how pixels depend on each other;
7.88 bits/dim on this data) by more than both intervals, and so well below the
8 bits/dim of uniform noise. A GAN has no likelihood, and 300 steps do not make
it good: its samples' sliced Wasserstein distance to test images (multi-scale
patches) must fall by a tenth from its initial weights' (measured: DCGAN 304 ->
180, PGGAN 186 -> 154). Skipped where ../shared/data is absent.
"""

from __future__ import annotations

import pytest
import torch
from conftest import shared

from pixelzoo import data, models
from pixelzoo.evaluation.baselines import independent_pixels_bits
from pixelzoo.evaluation.nll import evaluate_nll
from pixelzoo.evaluation.swd import swd
from pixelzoo.runs import Run
from pixelzoo.training import TrainConfig, train
from pixelzoo.training.trainer import fast_bfloat16

TEST_IMAGES = 200


@pytest.fixture(scope="module")
def cifar():
    root = shared("cifar10-jpeg")
    test = data.load("folder", "test", root)
    test = test.subset(
        torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:TEST_IMAGES]
    )
    baseline = independent_pixels_bits(data.load("folder", "train", root), test)
    return root, test, baseline


def short_run(root, tmp_path, model, **kw):
    settings = dict(
        model=model, preset="cifar10_cpu", data="folder", data_dir=str(root), steps=40,
        batch_size=16, samples=0, valid_images=50, ckpt_every=10**6, amp=fast_bfloat16("cpu"),
    )  # fmt: skip
    train(TrainConfig(**{**settings, **kw}), tmp_path / model, progress=False)
    return Run(tmp_path / model)


@pytest.mark.parametrize(
    "model,kw",
    [
        ("pixelcnn", {}),
        ("gated_pixelcnn", {"cond": "class"}),
        ("pixelcnn_pp", {}),
        ("row_lstm", {}),
        ("vae", {"overrides": {"iwae_samples": 4}}),
    ],
)
def test_likelihood_models_learn_colour_images(cifar, tmp_path, model, kw):
    root, test, baseline = cifar
    run = short_run(root, tmp_path, model, **kw)
    net = run.load_model("last")
    assert net.image_shape == (3, 32, 32) and net.levels == 256
    got = evaluate_nll(net, test)
    low, high = got["bits_per_dim_ci"]
    assert high < baseline.low, (
        f"{model}: {got['bits_per_dim']:.3f} [{low:.3f}, {high:.3f}] bits/dim, baseline {baseline}"
    )
    assert high < 7.8
    if net.nats_kind == "bound" or net.has_cached_sampler():  # naive: 3,072 network passes
        samples = net.sample(2, net.sample_cond(2), torch.Generator().manual_seed(0))
        assert samples.shape == (2, 3, 32, 32) and int(samples.max()) <= 255


@pytest.mark.parametrize("model", ["dcgan", "pggan"])
def test_gans_move_towards_the_data(cifar, tmp_path, model):
    root, test, _ = cifar
    run = short_run(root, tmp_path, model, batch_size=32, steps=300)
    torch.manual_seed(0)  # as the trainer seeds before building: the run's initial weights
    fresh = models.build(model, (3, 32, 32), 256, "cifar10_cpu")
    trained = run.load_model("last")
    real = test.images[:TEST_IMAGES].long()
    before, after = (
        swd(m.sample(TEST_IMAGES, generator=torch.Generator().manual_seed(0)), real, 256)["mean"]
        for m in (fresh, trained)
    )
    assert after < 0.9 * before, (before, after)
