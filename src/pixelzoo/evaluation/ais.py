"""Annealed importance sampling (AIS) estimates of log p(x) for decoder models.

After Wu et al. 2017, "On the Quantitative Analysis of Decoder-Based Generative
Models" (§2.2 and §4), with AIS from Neal 2001 and BDMC from Grosse et al. 2015.

A decoder model is a prior p(z) = N(0, I) and an observation model p(x | z) on
integer images: a VAE's decoder, or a GAN's generator with a Bernoulli (binary
data) or discretized Gaussian (grey or colour data) observation model. AIS
anneals from the prior to the posterior through

    f_t(z) = p(z) p(x | z)^beta_t,   0 = beta_0 < beta_1 < ... < beta_T = 1,

moving every chain with one Hamiltonian Monte Carlo transition per step and
accumulating log w += (beta_t - beta_{t-1}) log p(x | z). With K chains,
log mean_k w_k estimates log p(x); it is a stochastic **lower** bound: its
expectation is at most log p(x) (Jensen), and the gap shrinks as T grows.

**BDMC** (bidirectional Monte Carlo) checks the estimate on simulated data:
(z*, x) drawn from the model gives an exact posterior sample z*, from which AIS
run in reverse (beta from 1 to 0) gives a stochastic **upper** bound on log p(x).
The true value lies between the two; a small gap says the forward estimates on
real data can be trusted at that number of steps.

Units are nats per image, the same as an exact NLL of an autoregressive model on
the same integer images, so a GAN and a PixelCNN stand in one column.

NOTE: Wu et al. observe GAN outputs through a Gaussian with a variance tuned on
validation data, on continuous pixels. pixelzoo's data are integer images, so the
observation models are discrete: Bernoulli probabilities with a pixel-flip noise
``eps`` (a generator that outputs exact 0s and 1s would otherwise give any
mismatched image probability 0), and a Gaussian discretized to the bins of the
levels, with standard deviation ``sigma`` in the [-1, 1] scale.
NOTE: the HMC step size is adapted per chain towards 65% acceptance, as in Wu
et al.'s code, after every transition.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from pixelzoo.data.base import check_image_set
from pixelzoo.errors import ConfigError, InputError
from pixelzoo.models.adversarial import AdversarialModel
from pixelzoo.models.vae import VAE
from pixelzoo.utils.threads import at_most


# ---------------------------------------------------------------------- decoders
class Decoder:
    """A prior N(0, I) on ``latent_dim`` dimensions and an observation model p(x | z)."""

    latent_dim: int
    dtype: torch.dtype = torch.float32  # what the latents are handed to the network as

    def log_likelihood(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x | z) in nats, ``[M]``, for latents ``[M, latent_dim]`` and images ``[M, ...]``."""
        raise NotImplementedError

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer images x ~ p(x | z)."""
        raise NotImplementedError


def log_normal_bin(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """log(Phi(hi) - Phi(lo)) for standard-normal CDF Phi, accurate in both tails.

    Bins above the mean are computed through the upper tail (Phi(-lo) - Phi(-hi)),
    so the difference of two CDFs near 1 never cancels.
    """
    flip = lo > 0
    a = torch.where(flip, -hi, lo)
    b = torch.where(flip, -lo, hi)
    log_b, log_a = torch.special.log_ndtr(b), torch.special.log_ndtr(a)
    return log_b + torch.log((-torch.expm1((log_a - log_b).clamp(max=0.0))).clamp(min=1e-300))


def discretized_gaussian_log_prob(
    mean: torch.Tensor, x: torch.Tensor, levels: int, sigma: float
) -> torch.Tensor:
    """Per-sub-pixel log-probability of integer ``x`` under N(mean, sigma^2) cut into the level bins.

    Level k sits at ``-1 + 2k/(levels-1)``; its bin is half a level either side,
    and the end bins run to -inf and +inf, so the levels' probabilities sum to 1.
    The end bins are one CDF each, so no infinity enters the arithmetic (or its
    gradient).
    """
    half = 1.0 / (levels - 1)
    centre = x.to(mean.dtype) * (2 * half) - 1
    lo, hi = (centre - half - mean) / sigma, (centre + half - mean) / sigma
    interior = log_normal_bin(lo, hi)
    first = torch.special.log_ndtr(hi)  # level 0: (-inf, hi]
    last = torch.special.log_ndtr(-lo)  # the top level: [lo, inf)
    return torch.where(x == 0, first, torch.where(x == levels - 1, last, interior))


class GANDecoder(Decoder):
    """A GAN generator as a decoder: G(z) observed through a discrete noise model.

    ``output="bernoulli"`` generators give pixel probabilities p; each pixel is
    then 1 with probability ``eps + (1 - 2 eps) p`` (flip noise ``eps``).
    ``output="tanh"`` generators give means in [-1, 1], observed through a
    Gaussian with standard deviation ``sigma`` discretized to the levels.
    """

    def __init__(self, model, *, eps: float = 1e-3, sigma: float = 0.1):
        if not 0 < eps < 0.5 or not sigma > 0:
            raise ConfigError(
                f"the GAN observation model needs 0 < eps < 0.5 and sigma > 0, got {eps}, {sigma}"
            )
        self.model, self.eps, self.sigma = model, eps, sigma
        self.latent_dim, self.dtype = model.latent_dim, model.dtype
        self.levels = model.levels
        self.kind = "bernoulli" if model.output == "bernoulli" else "discretized gaussian"

    def describe(self) -> str:
        if self.kind == "bernoulli":
            return f"Bernoulli(G(z)) with pixel-flip noise eps={self.eps:g}"
        return f"N(G(z), {self.sigma:g}^2) discretized to {self.levels} levels"

    def log_likelihood(self, z, x):
        out = self.model.image_means(z).double()
        if self.kind == "bernoulli":
            p = self.eps + (1 - 2 * self.eps) * out
            terms = torch.where(x.bool(), p.log(), torch.log1p(-p))
        else:
            terms = discretized_gaussian_log_prob(out, x, self.levels, self.sigma)
        return terms.flatten(1).sum(1)

    @torch.no_grad()
    def sample(self, z, generator=None):
        out = self.model.image_means(z).double()
        u = torch.rand(out.shape, generator=generator, dtype=torch.float64).to(out.device)
        if self.kind == "bernoulli":
            return (u < self.eps + (1 - 2 * self.eps) * out).long()
        # Inverse CDF of the Gaussian, then the level whose bin holds the draw.
        y = out + self.sigma * math.sqrt(2) * torch.special.erfinv(2 * u - 1)
        k = self.levels - 1
        return torch.round((y.clamp(-1, 1) + 1) * (k / 2)).long()


class VAEDecoder(Decoder):
    """A VAE's decoder network and its likelihood (Bernoulli or discretized logistic)."""

    def __init__(self, model):
        self.model = model
        self.latent_dim, self.dtype = model.latent_dim, model.dtype
        self.levels = model.levels
        self.kind = type(model.likelihood).__name__

    def describe(self) -> str:
        return f"the VAE's decoder ({self.kind})"

    def log_likelihood(self, z, x):
        return self.model.log_likelihood(self.model.decode(z), x).double()

    @torch.no_grad()
    def sample(self, z, generator=None):
        return self.model.observe(self.model.decode(z), generator)


def decoder_of(model, **observation) -> Decoder:
    """The :class:`Decoder` view of a GAN or VAE (``observation``: ``eps``/``sigma`` for GANs)."""
    if isinstance(model, AdversarialModel):
        return GANDecoder(model, **observation)
    if isinstance(model, VAE):
        return VAEDecoder(model)
    raise ConfigError(
        f"AIS needs a decoder model (a GAN or a VAE); {getattr(model, 'registry_name', type(model).__name__)} "
        "has an exact likelihood already"
    )


# ---------------------------------------------------------------------- AIS
@dataclass
class AISConfig:
    """AIS settings. Wu et al. use up to 16,000 intermediate distributions; 1000 is a usual start.

    Args:
        steps: number T of intermediate distributions (HMC transitions).
        chains: independent chains per image; the estimate averages their weights.
        leapfrog: leapfrog steps per HMC transition.
        step_size: initial leapfrog step size (adapted per chain).
        target_accept: acceptance rate the step size is adapted towards: after each
            transition a chain's log step size moves by ``adapt_rate`` times
            (accepted - target_accept); 0 keeps it fixed.
        schedule: ``"sigmoid"`` (Grosse et al. 2015, delta=4) or ``"linear"`` in beta.
    """

    steps: int = 1000
    chains: int = 16
    leapfrog: int = 10
    step_size: float = 0.05
    target_accept: float = 0.65
    adapt_rate: float = 0.02
    schedule: str = "sigmoid"

    def validate(self) -> None:
        if min(self.steps, self.chains, self.leapfrog) < 1 or not self.step_size > 0:
            raise ConfigError("AIS needs steps, chains and leapfrog >= 1 and a positive step_size")
        if self.schedule not in ("sigmoid", "linear"):
            raise ConfigError(f"AIS schedule must be 'sigmoid' or 'linear', got {self.schedule!r}")


def schedule(steps: int, kind: str = "sigmoid", delta: float = 4.0) -> torch.Tensor:
    """``[steps + 1]`` inverse temperatures from exactly 0 to exactly 1 (float64)."""
    t = torch.linspace(-1, 1, steps + 1, dtype=torch.float64)
    if kind == "linear":
        return (t + 1) / 2
    s = torch.sigmoid(delta * t)
    return (s - s[0]) / (s[-1] - s[0])


class _Target:
    """log f_beta(z) = log N(z; 0, I) + beta log p(x | z) and its gradient, for every chain."""

    def __init__(self, decoder: Decoder, x: torch.Tensor):
        self.decoder, self.x = decoder, x

    def loglik_and_grad(self, z: torch.Tensor):
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            ll = self.decoder.log_likelihood(z.to(self.decoder.dtype), self.x).double()
            (grad,) = torch.autograd.grad(ll.sum(), z)
        return ll.detach(), grad.double()


def _log_prior(z: torch.Tensor) -> torch.Tensor:
    return -0.5 * (z.square().sum(1) + z.shape[1] * math.log(2 * math.pi))


def _hmc(target: _Target, z, ll, grad, beta: float, eps, cfg: AISConfig, g):
    """One HMC transition leaving f_beta invariant; returns the new state and the acceptance mask."""
    p = torch.randn(z.shape, generator=g, dtype=z.dtype).to(z.device)
    e = eps[:, None]

    def potential_grad(grad_ll, zz):  # gradient of U = -log f_beta
        return zz - beta * grad_ll

    def energy(zz, llz, pp):
        return -(_log_prior(zz) + beta * llz) + 0.5 * pp.square().sum(1)

    h0 = energy(z, ll, p)
    zn, pn, lln, gn = z, p - 0.5 * e * potential_grad(grad, z), ll, grad
    for i in range(cfg.leapfrog):
        zn = zn + e * pn
        lln, gn = target.loglik_and_grad(zn)
        if i < cfg.leapfrog - 1:
            pn = pn - e * potential_grad(gn, zn)
    pn = pn - 0.5 * e * potential_grad(gn, zn)
    h1 = energy(zn, lln, pn)
    log_u = torch.rand(len(z), generator=g, dtype=z.dtype).to(z.device).log()
    accept = (log_u < (h0 - h1)) & torch.isfinite(h1)
    keep = accept[:, None]
    return (
        torch.where(keep, zn, z),
        torch.where(accept, lln, ll),
        torch.where(keep, gn, grad),
        accept,
    )


@torch.no_grad()
def _anneal(decoder, x, z, betas, cfg: AISConfig, g, progress: bool, desc: str):
    """Run AIS along ``betas`` from state ``z``; returns log weights ``[M]`` and the mean
    acceptance. A loop of small operations: it runs on one thread (utils/threads.py)."""
    with at_most():
        return _anneal_loop(decoder, x, z, betas, cfg, g, progress, desc)


def _anneal_loop(decoder, x, z, betas, cfg: AISConfig, g, progress: bool, desc: str):
    target = _Target(decoder, x)
    ll, grad = target.loglik_and_grad(z)
    eps = torch.full((len(z),), cfg.step_size, dtype=torch.float64, device=z.device)
    logw = torch.zeros(len(z), dtype=torch.float64, device=z.device)
    accepted = 0.0
    forward = bool(betas[-1] > betas[0])
    for t in tqdm(range(1, len(betas)), desc=desc, unit="step", disable=not progress, leave=False):
        b_prev, b = float(betas[t - 1]), float(betas[t])
        if forward:  # weight at the old state, then move under f_t
            logw += (b - b_prev) * ll
            z, ll, grad, acc = _hmc(target, z, ll, grad, b, eps, cfg, g)
        else:  # reverse: move under f_{t-1} (the previous beta), then weight at the new state
            z, ll, grad, acc = _hmc(target, z, ll, grad, b_prev, eps, cfg, g)
            logw += (b - b_prev) * ll
        eps = eps * torch.exp(cfg.adapt_rate * (acc.double() - cfg.target_accept))
        accepted += float(acc.double().mean())
    return logw, accepted / (len(betas) - 1)


def _repeat(x: torch.Tensor, k: int) -> torch.Tensor:
    return x.repeat_interleave(k, dim=0)


def _log_mean_exp(logw: torch.Tensor, k: int) -> torch.Tensor:
    return torch.logsumexp(logw.view(-1, k), 1) - math.log(k)


def ais_log_prob(
    decoder: Decoder,
    x: torch.Tensor,
    cfg: AISConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> dict:
    """Forward AIS estimates of log p(x) for each image.

    Returns ``{"log_prob": [B], "chain_log_weights": [B, chains], "acceptance"}``. Each
    estimate is a stochastic lower bound on log p(x) (nats); the chains of all images
    run as one batch. The spread of an image's chain log-weights says how far the
    chains are from agreeing (0 when every chain found the same weight).
    """
    cfg = cfg or AISConfig()
    cfg.validate()
    check_image_set(x, "images")
    device = x.device
    k = cfg.chains
    z = torch.randn(len(x) * k, decoder.latent_dim, generator=generator, dtype=torch.float64).to(
        device
    )
    logw, acc = _anneal(
        decoder,
        _repeat(x, k),
        z,
        schedule(cfg.steps, cfg.schedule),
        cfg,
        generator,
        progress,
        "AIS",
    )
    return {
        "log_prob": _log_mean_exp(logw, k).cpu(),
        "chain_log_weights": logw.view(-1, k).cpu(),
        "acceptance": acc,
    }


def bdmc(
    decoder: Decoder,
    n: int,
    cfg: AISConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> dict:
    """BDMC on ``n`` images simulated from the model: forward (lower) and reverse (upper) bounds.

    Returns ``{"lower": [n], "upper": [n], "gap": mean upper - lower, "x": the images, ...}``;
    log p(x) of each simulated image lies between its two bounds (in expectation).
    """
    cfg = cfg or AISConfig()
    cfg.validate()
    if n < 1:
        raise InputError(f"BDMC needs at least one simulated image, got {n}")
    k = cfg.chains
    z_star = torch.randn(n, decoder.latent_dim, generator=generator, dtype=torch.float64)
    x = decoder.sample(z_star.to(decoder.dtype), generator)
    lower = ais_log_prob(decoder, x, cfg, generator=generator, progress=progress)
    betas = schedule(cfg.steps, cfg.schedule).flip(0)
    logw, acc = _anneal(
        decoder,
        _repeat(x, k),
        _repeat(z_star, k).to(x.device),
        betas,
        cfg,
        generator,
        progress,
        "reverse AIS",
    )
    upper = -_log_mean_exp(logw, k).cpu()
    return {
        "lower": lower["log_prob"],
        "upper": upper,
        "gap": float((upper - lower["log_prob"]).mean()),
        "x": x,
        "acceptance": (lower["acceptance"], acc),
    }


def bdmc_to_target(
    decoder: Decoder,
    n: int,
    cfg: AISConfig,
    *,
    target_gap: float = 1.0,
    max_steps: int = 16_000,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> dict:
    """BDMC with twice the steps each time, until the gap is below ``target_gap`` nats/image.

    Starts at ``cfg.steps``; stops at the first run whose gap is at most the target,
    or when doubling would pass ``max_steps``. Returns ``{"steps": the steps of the last
    run, "gap": its gap, "target": target_gap, "reached": bool, "history": [(steps, gap)]}``:
    forward AIS on real images with ``steps`` is then as tight as BDMC could check.
    """
    if not target_gap > 0:
        raise ConfigError(f"the BDMC target gap must be positive, got {target_gap}")
    steps, history = cfg.steps, []
    while True:
        run_cfg = dataclasses.replace(cfg, steps=steps)
        gap = bdmc(decoder, n, run_cfg, generator=generator, progress=progress)["gap"]
        history.append((steps, gap))
        if gap <= target_gap or 2 * steps > max_steps:
            return {"steps": steps, "gap": gap, "target": target_gap, "reached": gap <= target_gap,
                    "history": history}  # fmt: skip
        steps *= 2


NOISE_GRID = {  # candidate observation noises for a GAN, chosen on validation images
    "eps": (1e-4, 1e-3, 1e-2, 3e-2, 1e-1),
    "sigma": (0.02, 0.05, 0.1, 0.2, 0.4),
}


def choose_gan_noise(
    model, x: torch.Tensor, cfg: AISConfig | None = None, *, generator=None
) -> dict:
    """The observation noise (``eps`` or ``sigma``) under which AIS gives the GAN the highest mean log p(x).

    Wu et al. 2017 choose the Gaussian variance of GAN decoders on a validation set;
    this does the same over :data:`NOISE_GRID` with a short AIS on ``x`` (validation
    images, not the test images reported). Returns ``{"eps" or "sigma": value, "scores": {...}}``.
    """
    cfg = cfg or AISConfig(steps=100, chains=4, leapfrog=5)
    key = model.noise_key
    scores = {}
    for value in NOISE_GRID[key]:
        est = ais_log_prob(GANDecoder(model, **{key: value}), x, cfg, generator=generator)
        scores[value] = float(est["log_prob"].mean())
    best = max(scores, key=scores.get)
    return {key: best, "scores": scores}
