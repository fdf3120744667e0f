"""VAE: the IWAE bound against log p(x) computed by quadrature over a 1-d latent,
ELBO <= IWAE, tightening with k, decoders, and learning on the digits."""

from __future__ import annotations

import math

import pytest
import torch

from pixelzoo import data, models
from pixelzoo.errors import ConfigError
from pixelzoo.models.vae import gaussian_log_prob
from pixelzoo.runs import read_metrics
from pixelzoo.training import TrainConfig, load_model, train


def _tiny_vae(levels=2, **kw):
    torch.manual_seed(0)
    settings = {"latent_dim": 1, "filters": 4, "hidden": 16, "iwae_samples": 8, **kw}
    return models.build("vae", (1, 8, 8), levels, **settings).double().eval()


def _exact_log_px(model, x, points=20001, span=10.0):
    """log p(x) = log integral p(x | z) N(z) dz for a 1-d latent, by the trapezoid rule."""
    z = torch.linspace(-span, span, points, dtype=torch.float64)[:, None]
    with torch.no_grad():
        params = model.decode(z)
        out = []
        for xi in x:
            log_px_z = model.log_likelihood(params, xi.expand(points, *xi.shape))
            integrand = log_px_z - 0.5 * (math.log(2 * math.pi) + z[:, 0] ** 2)
            w = torch.full((points,), (2 * span) / (points - 1), dtype=torch.float64)
            w[0] = w[-1] = w[0] / 2
            out.append(torch.logsumexp(integrand + w.log(), 0))
    return torch.stack(out)


def test_gaussian_log_prob_matches_torch():
    z, mu, logvar = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    ref = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(gaussian_log_prob(z, mu, logvar), ref)


def test_iwae_bound_tightens_with_k_towards_the_exact_likelihood():
    model = _tiny_vae()
    with (
        torch.no_grad()
    ):  # make p(x | z) depend strongly on z, so q(z | x) is far from the posterior
        model.dec_dense[0].weight.mul_(10)
    x = (torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.3).long()
    exact = _exact_log_px(model, x)
    g = torch.Generator().manual_seed(2)
    repeats = 200
    means = {}
    for k in (1, 10, 100):
        draws = torch.stack([model.log_prob(x, k=k, generator=g) for _ in range(repeats)])
        means[k] = draws.mean(0)
        # E[IWAE_k] <= log p(x): the mean stays below, up to its standard error.
        se = draws.std(0) / math.sqrt(repeats)
        assert (means[k] <= exact + 3 * se + 1e-9).all(), (k, means[k], exact)
    assert (means[1] < means[10]).all() and (means[10] < means[100]).all(), means
    # With many samples the bound reaches log p(x) (the posterior is 1-d, so k=20000 is plenty).
    big = model.log_prob(x, k=20000, generator=g)
    torch.testing.assert_close(big, exact, rtol=0, atol=0.05)
    # The gap at k=1 (the ELBO) is real for this untrained encoder: the test is not vacuous.
    assert (exact - means[1]).min() > 0.1


def test_elbo_is_below_the_iwae_bound():
    model = _tiny_vae(latent_dim=4)
    x = (torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.5).long()
    torch.manual_seed(4)
    elbo = torch.stack([model.elbo(x).detach() for _ in range(400)]).mean(0)
    iwae = model.log_prob(x, k=200, generator=torch.Generator().manual_seed(5))
    assert (elbo < iwae).all(), (elbo, iwae)
    # The IWAE bound with k=1 is the ELBO's estimator: same mean (within noise).
    k1 = torch.stack(
        [model.log_prob(x, k=1, generator=torch.Generator().manual_seed(s)) for s in range(400)]
    ).mean(0)
    torch.testing.assert_close(k1, elbo, rtol=0, atol=0.6)


@pytest.mark.parametrize("levels, decoder", [(2, "bernoulli"), (17, "logistic"), (256, "logistic")])
def test_decoder_is_a_normalised_distribution_of_pixels(levels, decoder):
    model = models.build("vae", (1, 8, 8), levels, latent_dim=2, filters=4, hidden=8).double()
    assert decoder.lower() in type(model.likelihood).__name__.lower()
    params = model.decode(torch.randn(1, 2, dtype=torch.float64))
    # Summing p(x_ij = v | z) over v at every pixel gives 1.
    total = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    for v in range(levels):
        x = torch.full((1, 1, 8, 8), v, dtype=torch.long)
        total += model.likelihood.log_prob(params, x).exp()
    torch.testing.assert_close(total, torch.ones_like(total))
    s = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 1, 8, 8) and int(s.min()) >= 0 and int(s.max()) < levels
    assert torch.equal(s, model.sample(6, generator=torch.Generator().manual_seed(0)))


def test_colour_vae_and_errors():
    model = models.build("vae", (3, 32, 32), 256, "cifar10")
    assert model.nats_kind == "bound"
    x = model.sample(2, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 3, 32, 32)
    assert model.log_prob(x, k=2).shape == (2,)
    with pytest.raises(ConfigError, match="bernoulli"):
        models.build("vae", (1, 8, 8), 17, decoder="bernoulli")
    with pytest.raises(ConfigError, match="one network pass"):
        model.sample(1, sampler="cached")


def test_vae_training_on_digits_lowers_the_bound(tmp_path):
    cfg = TrainConfig(model="vae", data="digits", steps=200, batch_size=32, log_every=20, samples=4)
    train(cfg, tmp_path / "run", progress=False)
    valid = [r for r in read_metrics(tmp_path / "run") if r["split"] == "valid"]
    assert valid and all(r["nats_kind"] == "bound" for r in valid)
    model = load_model(tmp_path / "run")
    test = data.load("digits", "test")
    x = test.images.long()
    bound = float(model.log_prob(x, k=64, generator=torch.Generator().manual_seed(0)).mean())
    # Baseline: independent pixels, each with the training set's intensity histogram.
    train_x = data.load("digits", "train").images.long()
    hist = torch.bincount(train_x.flatten(), minlength=17).double() + 1
    baseline = float(torch.log(hist / hist.sum())[x.flatten()].sum()) / len(x)
    assert bound > baseline + 20, (bound, baseline)
    assert (tmp_path / "run" / "samples").is_dir()
