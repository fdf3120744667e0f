"""What every GAN in pixelzoo shares: latent draws, the observation model, the losses.

A GAN here is a generator G: z -> image and a discriminator (critic) D: image ->
score. G's output lives in the same space as the data the discriminator sees:

- ``output="tanh"`` (grey / colour data): G gives floats in [-1, 1]; real images
  are mapped there by :func:`pixelzoo.data.base.to_unit`; a sample is G(z)
  rounded to the nearest of the ``levels`` values.
- ``output="bernoulli"`` (binary data, the default there): G gives per-pixel
  probabilities p; the discriminator sees ``2p - 1`` and real binary images as
  -1 / +1; a sample draws every pixel from Bernoulli(p). This is the observation
  model under which a GAN has a likelihood at all, which annealed importance
  sampling can then estimate (Wu et al. 2017).

Losses (chosen by the model's ``loss`` setting):

- ``"nonsaturating"`` (Goodfellow et al. 2014 §3; DCGAN): D minimises
  ``softplus(-D(x)) + softplus(D(G(z)))``, G minimises ``softplus(-D(G(z)))``.
- ``"wgan-gp"`` (Gulrajani et al. 2017, as used by Karras et al. 2018): the critic
  minimises ``D(G(z)) - D(x) + lambda / gamma^2 (|grad D(x_hat)| - gamma)^2 +
  eps_drift D(x)^2`` at random interpolates ``x_hat``; G minimises ``-D(G(z))``.

Under torchrun every process holds a share of each global batch (``share``: its
rank and the number of processes, set by the trainer). The random numbers of a
step are drawn for the whole global batch by every process, from the same
generator, and each keeps its rows (images ``rank::world``, as the trainer's batch
slices): N processes then draw exactly one process's latents and interpolates.

GANs have no likelihood: :meth:`AdversarialModel.log_prob` raises and says so.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.data.base import to_unit
from pixelzoo.errors import ConfigError
from pixelzoo.models.base import GenerativeModel

OUTPUTS = ("auto", "tanh", "bernoulli")
LOSSES = ("nonsaturating", "wgan-gp")


class AdversarialModel(GenerativeModel):
    """Base class of the GANs: a generator, a discriminator and their two losses.

    Subclasses build ``self.generator`` (called by :meth:`generate`) and
    ``self.discriminator`` (called by :meth:`discriminate`), and set
    ``self.latent_dim``. The config must have ``output`` and ``loss``, and for
    ``wgan-gp`` also ``gp_lambda``, ``gp_target`` and ``drift``.
    """

    nats_kind = None
    latent_dim: int
    share: tuple[int, int] = (0, 1)  # (rank, processes) of this process under torchrun

    def __init__(self, image_shape, levels, config):
        super().__init__(image_shape, levels, config)
        if config.output not in OUTPUTS:
            raise ConfigError(f"output must be one of {', '.join(OUTPUTS)}, got {config.output!r}")
        if config.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}, got {config.loss!r}")
        self.output = config.output
        if self.output == "auto":
            self.output = "bernoulli" if levels == 2 else "tanh"
        if self.output == "bernoulli" and levels != 2:
            raise ConfigError(
                f"output='bernoulli' needs binary data (levels=2), got levels={levels}"
            )

    def averaged(self) -> nn.Module:
        return self.generator  # Karras et al. average G's weights only

    @property
    def noise_key(self) -> str:
        """The name of the observation model's noise for AIS: ``"eps"`` (pixel flips of a
        Bernoulli generator) or ``"sigma"`` (a discretized Gaussian around G(z))."""
        return "eps" if self.output == "bernoulli" else "sigma"

    # ------------------------------------------------------------------ generator side
    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent vectors z ~ N(0, I), drawn from ``generator`` (or the global RNG)."""
        z = torch.randn(n, self.latent_dim, generator=generator)
        return z.to(self.device)

    def shared(self, draw, n: int) -> torch.Tensor:
        """This process's ``n`` rows of ``draw(n * processes)``: the global batch's random
        numbers, of which every process keeps its own (see the module docstring)."""
        rank, world = self.share
        return draw(n * world)[rank::world]

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z): ``[n, C, H, W]`` floats in [-1, 1] (``tanh``) or probabilities (``bernoulli``)."""
        raise NotImplementedError

    def image_means(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) at the images' size: what the observation model draws images from (samples)
        and scores images with (AIS). A generator that grows (PGGAN) overrides it."""
        return self.generate(z)

    def to_critic(self, out: torch.Tensor) -> torch.Tensor:
        """The generator's output as the discriminator sees it (floats in [-1, 1])."""
        return 2 * out - 1 if self.output == "bernoulli" else out

    def real_to_critic(self, x: torch.Tensor) -> torch.Tensor:
        """Integer images as the discriminator sees them."""
        return to_unit(x, self.levels).to(self.dtype)

    def discriminate(self, u: torch.Tensor) -> torch.Tensor:
        """D: critic-space images ``[B, C, H, W]`` -> scores ``[B]`` (logits for nonsaturating)."""
        raise NotImplementedError

    def observe(self, out: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Integer images from G's output: Bernoulli draws, or rounding to the nearest level."""
        if self.output == "bernoulli":
            u = torch.rand(out.shape, generator=generator).to(out.device)
            return (u < out.float()).long()
        k = self.levels - 1
        return torch.round((out.float().clamp(-1, 1) + 1) * (k / 2)).long()

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` integer images: z ~ N(0, I), then G(z) through the observation model."""
        return self.observe(self.image_means(self.latent(n, generator)), generator)

    def log_prob(self, x, cond=None):
        raise ConfigError(
            f"{self.registry_name} is a GAN and defines no likelihood; its log p(x) can only be "
            f"estimated, by annealed importance sampling over its generator (Wu et al. 2017)"
        )

    def loss(self, batch):
        raise ConfigError(
            f"{self.registry_name} is trained adversarially: use discriminator_loss and "
            f"generator_loss (pixelzoo.training does)"
        )

    # ------------------------------------------------------------------ the two losses
    def discriminator_loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """The discriminator's loss on real integer images ``x`` and as many fakes.

        Returns the scalar loss and a dict of detached statistics for the log.
        """
        real = self.real_to_critic(x)
        with torch.no_grad():
            fake = self.to_critic(self.generate(self.shared(self.latent, len(x))))
        d_real, d_fake = self.discriminate(real), self.discriminate(fake)
        stats = {"d_real": d_real.detach().float().mean(), "d_fake": d_fake.detach().float().mean()}
        if self.config.loss == "nonsaturating":
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
            return loss, stats
        penalty = self.gradient_penalty(real, fake)
        drift = self.config.drift * d_real.float().square()
        loss = (d_fake.float() - d_real.float() + penalty + drift).mean()
        stats["gradient_penalty"] = penalty.detach().mean()
        return loss, stats

    def gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """``lambda / gamma^2 (|grad_x D(x_hat)| - gamma)^2`` per image, x_hat between real and fake."""
        eps = self.shared(lambda m: torch.rand(m, 1, 1, 1), len(real)).to(real)
        mixed = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminate(mixed).sum(), mixed, create_graph=True)
        norm = grad.float().flatten(1).norm(dim=1)
        gamma = self.config.gp_target
        return self.config.gp_lambda / gamma**2 * (norm - gamma).square()

    def generator_loss(self, n: int) -> tuple[torch.Tensor, dict]:
        """The generator's loss on ``n`` fresh fakes (the discriminator is not updated by it)."""
        d_fake = self.discriminate(self.to_critic(self.generate(self.shared(self.latent, n))))
        if self.config.loss == "nonsaturating":
            return F.softplus(-d_fake).mean(), {}
        return -d_fake.float().mean(), {}

    def set_images_seen(self, images: int) -> None:
        """Hook for schedules that follow training progress (Progressive GAN's growth)."""

    def progress_state(self) -> dict:
        """JSON description of such a schedule's current state (empty by default)."""
        return {}
