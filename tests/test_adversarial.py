"""GANs: Progressive GAN components, fade-in, the schedule, exact resume mid-fade-in,
the losses, and learning on the digits (DCGAN and PGGAN)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pixelzoo import data, models
from pixelzoo.errors import ConfigError
from pixelzoo.models.adversarial import AdversarialModel
from pixelzoo.nn.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from pixelzoo.nn.sizes import resolution_ladder
from pixelzoo.runs import read_metrics
from pixelzoo.training import TrainConfig, load_model, train
from tests.helpers import pz, torchrun

GANS = [n for n in models.names() if issubclass(models.get(n).cls, AdversarialModel)]


# ---------------------------------------------------------------------- PGGAN components
def test_equalized_layers_equal_plain_layers_with_scaled_weights():
    torch.manual_seed(0)
    conv = EqualizedConv2d(3, 5, 3)
    x = torch.randn(2, 3, 6, 6)
    c = math.sqrt(2) / math.sqrt(3 * 3 * 3)
    plain = torch.nn.Conv2d(3, 5, 3, padding=1)
    with torch.no_grad():
        plain.weight.copy_(conv.weight * c)
        plain.bias.copy_(torch.randn(5))
        conv.bias.copy_(plain.bias)
    torch.testing.assert_close(conv(x), plain(x), rtol=1e-6, atol=1e-6)

    lin = EqualizedLinear(7, 4, gain=1.0)
    plain_lin = torch.nn.Linear(7, 4)
    with torch.no_grad():
        plain_lin.weight.copy_(lin.weight / math.sqrt(7))
        plain_lin.bias.zero_()
    z = torch.randn(3, 7)
    torch.testing.assert_close(lin(z), plain_lin(z), rtol=1e-6, atol=1e-6)

    # What makes the learning rate "equalized": stored weights are N(0, 1) whatever
    # the fan-in, and their gradient is the plain layer's times the He constant.
    big = EqualizedConv2d(256, 8, 3)
    assert abs(float(big.weight.detach().std()) - 1) < 0.02
    conv(x).square().sum().backward()
    plain(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, plain.weight.grad * c, rtol=1e-5, atol=1e-6)


def test_pixelnorm_gives_unit_length_feature_vectors():
    x = torch.randn(3, 10, 4, 5) * torch.rand(3, 1, 4, 5) * 30
    y = PixelNorm()(x)
    torch.testing.assert_close(y.square().mean(1), torch.ones(3, 4, 5), rtol=1e-5, atol=1e-5)
    # direction unchanged
    torch.testing.assert_close(F.normalize(y, dim=1), F.normalize(x, dim=1), rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_adds_one_map_equal_to_the_mean_std():
    torch.manual_seed(1)
    x = torch.randn(4, 6, 3, 3)
    y = MinibatchStdDev(group_size=4)(x)
    assert y.shape == (4, 7, 3, 3)
    torch.testing.assert_close(y[:, :6], x)
    expected = x.std(0, unbiased=False).mean()  # one group: the whole batch
    torch.testing.assert_close(
        y[:, 6], torch.full((4, 3, 3), float(expected)), rtol=1e-5, atol=1e-5
    )
    # Groups of 2 in a batch of 4 pair images (0, 2) and (1, 3), as the reference reshapes.
    y2 = MinibatchStdDev(group_size=2)(x)
    for members in ([0, 2], [1, 3]):
        s = x[members].std(0, unbiased=False).mean()
        for i in members:
            torch.testing.assert_close(y2[i, 6], torch.full((3, 3), float(s)), rtol=1e-5, atol=1e-5)
    # A batch not divisible by the group size falls back to a divisor (here 3).
    assert MinibatchStdDev(4)(torch.randn(3, 2, 2, 2)).shape == (3, 3, 2, 2)


def _pggan(shape=(1, 32, 32), levels=256, **kw):
    torch.manual_seed(0)
    return models.build("pggan", shape, levels, "tiny", **kw)


def test_fade_in_blends_the_old_resolution_and_the_new_one():
    m = _pggan()
    g, d = m.generator, m.discriminator
    z = torch.randn(4, 16)
    for level in (1, 2, 3):
        old = F.interpolate(g(z, level - 1, 1.0), scale_factor=2, mode="nearest")
        new = g(z, level, 1.0)
        torch.testing.assert_close(g(z, level, 0.0), old)
        torch.testing.assert_close(g(z, level, 0.3), 0.7 * old + 0.3 * new, rtol=1e-5, atol=1e-5)
        # alpha = 1 is the new block alone: toRGB of the last block's features.
        h = g.norm(F.leaky_relu(g.dense(g.norm(z)).reshape(4, -1, 4, 4), 0.2))
        h = g.norm(F.leaky_relu(g.conv(h), 0.2))
        for k in range(level):
            h = g.blocks[k](h)
        torch.testing.assert_close(new, g.to_rgb[level](h))

        u = torch.randn(4, 1, 4 << level, 4 << level)
        # The critic at alpha = 0 is the old critic on the 2x-pooled image.
        torch.testing.assert_close(d(u, level, 0.0), d(F.avg_pool2d(u, 2), level - 1, 1.0))
        assert not torch.allclose(d(u, level, 1.0), d(u, level, 0.0))


def test_schedule_grows_fades_and_stabilises():
    m = _pggan()  # 4 -> 8 -> 16 -> 32, 128 images per phase
    expected = {
        0: (0, 1.0),
        127: (0, 1.0),
        128: (1, 0.0),
        192: (1, 0.5),
        256: (1, 1.0),
        383: (1, 1.0),
        384: (2, 0.0),
        640: (3, 0.0),
        700: (3, 60 / 128),
        768: (3, 1.0),
        10**6: (3, 1.0),
    }
    for images, (level, alpha) in expected.items():
        m.set_images_seen(images)
        assert (int(m.level), float(m.alpha)) == (level, alpha), images
    m.set_images_seen(700)
    state = m.progress_state()
    assert state["phase"] == "fade-32x32" and state["resolution"] == 32
    # Real images during a fade-in are blended like the generator's output.
    m.set_images_seen(192)  # 8x8, alpha 0.5
    x = torch.randint(0, 256, (2, 1, 32, 32))
    u8 = F.avg_pool2d(x.float() * (2 / 255) - 1, 4)
    coarse = F.interpolate(F.avg_pool2d(u8, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(m.real_to_critic(x), 0.5 * coarse + 0.5 * u8, rtol=1e-5, atol=1e-5)
    # Samples always have the image size.
    assert m.sample(3, generator=torch.Generator().manual_seed(0)).shape == (3, 1, 32, 32)


@pytest.mark.parametrize(
    "shape, base, doublings",
    [((8, 8), (4, 4), 1), ((28, 28), (7, 7), 2), ((32, 32), (4, 4), 3), ((32, 16), (8, 4), 2)],
)
def test_resolution_ladder(shape, base, doublings):
    assert resolution_ladder(*shape) == (base, doublings)


# ---------------------------------------------------------------------- losses
def test_gradient_penalty_of_a_linear_critic_is_exact():
    m = _pggan(gp_lambda=10.0, gp_target=2.0)
    w = torch.randn(1, 32, 32)
    m.discriminate = lambda u: (u * w).flatten(1).sum(1)  # |grad| = |w| everywhere
    real, fake = torch.randn(5, 1, 32, 32), torch.randn(5, 1, 32, 32)
    expected = 10.0 / 4.0 * (w.norm() - 2.0) ** 2
    torch.testing.assert_close(
        m.gradient_penalty(real, fake), expected.expand(5), rtol=1e-5, atol=1e-4
    )


def test_gans_have_no_likelihood_and_one_sampler():
    for name in GANS:
        m = models.build(name, (1, 8, 8), 17)
        with pytest.raises(ConfigError, match="annealed importance sampling"):
            m.log_prob(torch.zeros(1, 1, 8, 8, dtype=torch.long))
        with pytest.raises(ConfigError, match="one network pass"):
            m.sample(2, sampler="naive")
        assert m.nats_kind is None


@pytest.mark.parametrize("name", GANS)
@pytest.mark.parametrize("shape, levels", [((1, 8, 8), 17), ((1, 28, 28), 2), ((3, 32, 32), 256)])
def test_gan_samples_are_valid_images_and_seeded(name, shape, levels):
    m = models.build(name, shape, levels, "tiny").eval()
    a = m.sample(5, generator=torch.Generator().manual_seed(3))
    b = m.sample(5, generator=torch.Generator().manual_seed(3))
    assert a.shape == (5, *shape) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) <= levels - 1
    assert torch.equal(a, b)
    if levels == 2:
        assert m.output == "bernoulli"
        p = m.generate(m.latent(5))
        assert float(p.detach().min()) >= 0 and float(p.detach().max()) <= 1


def test_dcgan_sizes_follow_the_paper_guidelines():
    m = models.build("dcgan", (3, 32, 32), 256, "cifar10")
    convt = [x for x in m.generator.modules() if isinstance(x, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convt] == [(512, 256), (256, 128), (128, 3)]
    bns = [x for x in m.discriminator.modules() if isinstance(x, torch.nn.BatchNorm2d)]
    assert len(bns) == 2  # none after the input layer
    assert isinstance(list(m.generator.up)[-1], torch.nn.Tanh)


# ---------------------------------------------------------------------- training
def gan_cfg(model, **kw):
    base = dict(model=model, data="digits", batch_size=16, log_every=1, ckpt_every=1000, samples=4)
    base.update(kw)
    return TrainConfig(**base)


def records(run_dir):
    return [r for r in read_metrics(run_dir) if r["split"] == "train"]


def test_pggan_resume_mid_fade_in_continues_identically(tmp_path):
    # digits 8x8 grows 4 -> 8; 128 images per phase at batch 16: the fade-in runs
    # over steps 8..15. Stop at step 13 (alpha 0.625), resume to 30.
    train(gan_cfg("pggan", steps=30, preset="tiny"), tmp_path / "full", progress=False)
    train(gan_cfg("pggan", steps=13, preset="tiny"), tmp_path / "split", progress=False)
    state = load_model(tmp_path / "split", "last")
    assert int(state.level) == 1 and float(state.alpha) == pytest.approx(0.625)
    train(TrainConfig(steps=30), tmp_path / "split", resume=True, progress=False)

    full, split = records(tmp_path / "full"), records(tmp_path / "split")
    assert [r["step"] for r in split] == list(range(1, 31))
    for a, b in zip(full, split, strict=True):
        for key in ("d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "alpha", "phase"):
            assert a[key] == b[key], (a["step"], key)
    phases = [r["phase"] for r in full]  # after steps 7, 8, 15, 16
    assert [phases[i] for i in (6, 7, 14, 15)] == [
        "stable-4x4",
        "fade-8x8",
        "fade-8x8",
        "stable-8x8",
    ]
    wa, wb = load_model(tmp_path / "full").state_dict(), load_model(tmp_path / "split").state_dict()
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


def test_pggan_checkpoint_holds_every_state(tmp_path):
    from pixelzoo.runs import Checkpoints

    train(gan_cfg("pggan", steps=12, preset="tiny"), tmp_path / "r", progress=False)
    weights, state, meta = Checkpoints(tmp_path / "r" / "checkpoints").load("last")
    # G's average (the sampling weights), D, both Adams, the raw G, alpha and phase.
    assert any(k.startswith("generator.") for k in weights)
    assert any(k.startswith("discriminator.") for k in weights)
    assert any(k.startswith("train_weights.generator.") for k in state)
    assert any(k.startswith("optim.generator.") for k in state)
    assert any(k.startswith("optim.discriminator.") for k in state)
    assert meta["phase"] == "fade-8x8" and meta["alpha"] == pytest.approx(0.5)
    assert float(weights["alpha"]) == pytest.approx(0.5)
    # The averaged generator differs from the trained one; the discriminator is the trained one.
    raw = {
        k[len("train_weights.") :]: v for k, v in state.items() if k.startswith("train_weights.")
    }
    g = [k for k in weights if k.startswith("generator.")]
    assert any(not torch.equal(weights[k], raw[k]) for k in g)
    d = [k for k in weights if k.startswith("discriminator.")]
    assert all(torch.equal(weights[k], raw[k]) for k in d)


@pytest.mark.parametrize(
    "name, settings",
    [
        # WGAN-GP (the penalty's double backward) and minibatch std over groups of 4,
        # through the growth 4 -> 8 and its fade-in (steps 8-15), fresh Adam per phase
        ("pggan", ["--preset", "tiny"]),
        # the nonsaturating loss; batch norm off, whose statistics are per process on CPUs
        ("dcgan", ["--preset", "digits", "--set", "batch_norm=false"]),
    ],
)
def test_gan_ddp_two_processes_equal_one_process(tmp_path, name, settings):
    """torchrun with 2 gloo processes, global batch 16 == 1 process with batch 16."""
    common = ["train", "--model", name, *settings, "--data", "digits", "--steps", "18"]
    common += ["--batch-size", "16", "--device", "cpu", "--no-progress"]
    common += ["--set", "amp=false", "--set", "log_every=1", "--set", "samples=0"]
    pz(*common, "--out", tmp_path / "one")
    out = torchrun(*common, "--out", tmp_path / "two")
    assert out.returncode == 0, out.stderr[-3000:]
    one, two = records(tmp_path / "one"), records(tmp_path / "two")
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, 19))
    keys = {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm", "d_real", "d_fake"}
    if name == "pggan":
        keys.add("gradient_penalty")
        assert one[-1]["phase"] == two[-1]["phase"] == "stable-8x8"
    for a, b in zip(one, two, strict=True):
        for key in keys:
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-5), (a["step"], key)
    wa, wb = load_model(tmp_path / "one").state_dict(), load_model(tmp_path / "two").state_dict()
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], atol=1e-5, rtol=1e-4, msg=k)


def test_gan_ddp_with_batch_norm_on_cpus_says_it_is_per_process(tmp_path):
    args = ["train", "--model", "dcgan", "--preset", "digits", "--data", "digits"]
    args += ["--steps", "3", "--batch-size", "16", "--device", "cpu", "--no-progress"]
    out = torchrun(*args, "--set", "samples=0", "--set", "log_every=1", "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stderr.count("whose statistics are each process's on the CPU") == 1  # rank 0
    assert [r["step"] for r in records(tmp_path / "run")] == [1, 2, 3]


def _pixel_stats(x, levels):
    """Mean image and the histogram of intensities."""
    u = x.float() / (levels - 1)
    hist = torch.bincount(x.flatten(), minlength=levels).float() / x.numel()
    return u.mean(0), hist


@pytest.mark.parametrize(
    "name, steps, overrides, ema",
    # PGGAN: growth to 8x8 done by step 70; a short average (the preset's 0.999 is
    # for runs of 10^5 steps and would still be mostly the initial weights here).
    [("dcgan", 600, {}, None), ("pggan", 400, {"images_per_phase": 1500}, 0.9)],
)
def test_gan_training_on_digits_moves_samples_towards_the_data(
    tmp_path, name, steps, overrides, ema
):
    real = data.load("digits", "train").images.long()
    real_mean, real_hist = _pixel_stats(real, 17)
    cfg = gan_cfg(
        name, steps=steps, batch_size=64, samples=0, log_every=50, overrides=overrides, ema=ema
    )
    torch.manual_seed(cfg.seed)  # the trainer's initial weights
    before = models.build(name, (1, 8, 8), 17, "digits", **overrides)
    train(cfg, tmp_path / "run", progress=False)
    after = load_model(tmp_path / "run", "last")

    def distance(model):
        x = model.sample(1000, generator=torch.Generator().manual_seed(0))
        mean, hist = _pixel_stats(x, 17)
        return float((mean - real_mean).abs().mean()), float((hist - real_hist).abs().sum())

    (m0, h0), (m1, h1) = distance(before.eval()), distance(after)
    assert m1 < 0.5 * m0, (m0, m1)  # the mean image
    assert h1 < 0.85 * h0, (h0, h1)  # the histogram of intensities (slower for WGAN-GP)
    log = records(tmp_path / "run")
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} <= set(log[-1])


@pytest.mark.parametrize("name", ["dcgan", "pggan", "vae"])
def test_baselines_train_on_the_mnist_files(tmp_path, name, bmnist_dir, mnist_dir):
    for data_name, root, levels in (("binarized_mnist", bmnist_dir, 2), ("mnist", mnist_dir, 256)):
        cfg = TrainConfig(
            model=name, data=data_name, data_dir=str(root), steps=2, batch_size=8, samples=2
        )
        cfg.eval_batch_size = 500
        if name == "vae":  # keep validation over 10,000 images quick
            cfg.overrides = {"iwae_samples": 1}
        train(cfg, tmp_path / f"{name}-{data_name}", progress=False)
        model = load_model(tmp_path / f"{name}-{data_name}")
        assert model.image_shape == (1, 28, 28) and model.levels == levels
        x = model.sample(2, generator=torch.Generator().manual_seed(0))
        assert int(x.max()) < levels
