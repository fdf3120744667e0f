"""Progressive GAN (Karras, Aila, Laine, Lehtinen 2018, "Progressive Growing of GANs
for Improved Quality, Stability, and Variation"), §2-4 and Appendix A.1.

- **Progressive growing** (§2): G and D start at the base resolution (4x4) and
  grow together, one resolution at a time. Each new block is **faded in**: during
  its fade-in phase the output is ``(1 - alpha) * upsample(toRGB_old(h_old)) +
  alpha * toRGB_new(h_new)`` in G and the mirror blend of ``fromRGB`` paths in D,
  with alpha rising linearly from 0 to 1 over ``images_per_phase`` real images;
  a stabilisation phase of as many images follows. Real images are shown at the
  current resolution (average-pooled), blended between the two resolutions in the
  same way during a fade-in.
- **Minibatch standard deviation** (§3): one extra feature map in D's last block,
  groups of 4 images.
- **Equalized learning rate** (§4.1) in every layer of G and D.
- **Pixelwise feature normalization** (§4.2) in G after every 3x3 convolution
  (and on the latent vector).
- **WGAN-GP loss** (lambda = 10) with the drift term eps_drift = 0.001 (A.1), one
  critic step per generator step; Adam lr 1e-3, beta1 0, beta2 0.99; an
  exponential moving average (0.999) of G's weights used for sampling.

Blocks (A.1, Table 2): G's first block is a dense layer from the latent vector to
a base-size image (the paper's 4x4 convolution of a 1x1 input) and a 3x3
convolution; every later block is a nearest-neighbour 2x upsampling and two 3x3
convolutions, LeakyReLU(0.2) throughout. D mirrors it with 2x average pooling;
its last block is minibatch stddev, a 3x3 convolution, a base-size convolution
(a dense layer) and a linear output. Feature maps at resolution 4 * 2^k are
``min(max_maps, map_base / 2^(k+1))``.

State: the current ``level`` (index of the resolution) and ``alpha`` are buffers,
so they travel in every checkpoint's weights; the trainer sets them from the
number of real images shown (:meth:`PGGAN.set_images_seen`), so a resumed run
picks up mid-fade-in exactly. Samples are shown at the image size (nearest
upsampling while training runs at a lower resolution).

NOTE: image sizes that are not 4 * 2^k (MNIST's 28x28) start from the base size
of :func:`~pixelzoo.nn.sizes.resolution_ladder` (7x7 -> 14 -> 28), and
the first dense layer's gain is sqrt(2) / sqrt(base area) (the reference's
sqrt(2) / 4 at 4x4). The reference also ramps the learning rate up over the first
40k images; use ``--set warmup_steps=N`` for that. The CIFAR-10 preset follows the
reference configuration of §6.5 (128 maps, a 128-d latent, 400k images per phase,
gradient-penalty target gamma = 750); the reference's sharing of one update
between G and D there (``separate_funcs=False``) is not reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.models.adversarial import LOSSES, OUTPUTS, AdversarialModel
from pixelzoo.models.registry import register
from pixelzoo.nn.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from pixelzoo.nn.sizes import resolution_ladder
from pixelzoo.utils.settings import setting


@dataclass
class PGGANConfig:
    """Hyper-parameters of a Progressive GAN (see the module docstring).

    Args:
        latent_dim: size of the latent vector z ~ N(0, I).
        max_maps: the most feature maps of any block.
        map_base: maps at resolution 4 * 2^k are min(max_maps, map_base / 2^(k+1)).
        images_per_phase: real images per fade-in and per stabilisation phase.
        mbstd_group: images per minibatch-standard-deviation group (§3).
        gp_lambda: weight lambda of the gradient penalty.
        gp_target: the gradient norm gamma the penalty pulls towards.
        drift: eps_drift, the weight of D(x)^2 (A.1).
        reset_optimizer: fresh Adam state when a phase starts, as the reference.
        output: "tanh", "bernoulli" (binary data) or "auto".
        loss: "wgan-gp" (the paper) or "nonsaturating".
    """

    latent_dim: int = setting(512, low=1, high=4096)
    max_maps: int = setting(512, low=1, high=4096)
    map_base: int = setting(8192, low=1, high=65_536)
    images_per_phase: int = setting(800_000, low=1)
    mbstd_group: int = setting(4, low=1, high=64)
    gp_lambda: float = setting(10.0, low=0.0)
    gp_target: float = setting(1.0, above=0.0)
    drift: float = setting(0.001, low=0.0)
    reset_optimizer: bool = True
    output: str = setting("auto", choices=OUTPUTS)
    loss: str = setting("wgan-gp", choices=LOSSES)


PRESETS = {
    # A fast demo on the 8x8 digits: 4x4 -> 8x8, 64 maps, 4k images per phase (grown
    # to 8x8 after 12k images, about 10 of the default 20 epochs at batch 64).
    "default": {"latent_dim": 64, "max_maps": 64, "images_per_phase": 4_000},
    "digits": {"latent_dim": 64, "max_maps": 64, "images_per_phase": 4_000},
    # 7x7 -> 14x14 -> 28x28 with 128 maps.
    "mnist": {"latent_dim": 128, "max_maps": 128, "images_per_phase": 200_000},
    "binarized_mnist": {"latent_dim": 128, "max_maps": 128, "images_per_phase": 200_000},
    # §6.5 / the reference's CIFAR-10 configuration.
    "cifar10": {
        "latent_dim": 128,
        "max_maps": 128,
        "map_base": 4096,
        "images_per_phase": 400_000,
        "gp_target": 750.0,
    },
    # A.1: the CelebA-HQ network's widths and schedule.
    "paper": {},
    # Ours, for 32x32 colour on a CPU: 4 -> 8 -> 16 -> 32 with 64 maps, 20k images per phase
    # (grown to 32x32 after 120k images, under 3 epochs of cifar10-jpeg).
    "cifar10_cpu": {"latent_dim": 64, "max_maps": 64, "images_per_phase": 20_000},
    # The smallest model with every part (it grows within a few steps), for the tests.
    "tiny": {"latent_dim": 16, "max_maps": 16, "images_per_phase": 128},
}


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class GBlock(nn.Module):
    """Upsample 2x (nearest), then two 3x3 convolutions, each followed by LeakyReLU and pixelnorm."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cout, 3)
        self.conv2 = EqualizedConv2d(cout, cout, 3)
        self.norm = PixelNorm()

    def forward(self, h):
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.norm(lrelu(self.conv1(h)))
        return self.norm(lrelu(self.conv2(h)))


class DBlock(nn.Module):
    """Two 3x3 convolutions with LeakyReLU, then 2x average pooling."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1 = EqualizedConv2d(cin, cin, 3)
        self.conv2 = EqualizedConv2d(cin, cout, 3)

    def forward(self, h):
        return F.avg_pool2d(lrelu(self.conv2(lrelu(self.conv1(h)))), 2)


class Generator(nn.Module):
    def __init__(self, latent_dim: int, channels: int, base, maps: list[int]):
        super().__init__()
        self.base = base
        area = base[0] * base[1]
        self.norm = PixelNorm()
        self.dense = EqualizedLinear(
            latent_dim, maps[0] * area, gain=math.sqrt(2) / math.sqrt(area)
        )
        self.conv = EqualizedConv2d(maps[0], maps[0], 3)
        self.blocks = nn.ModuleList(GBlock(maps[k - 1], maps[k]) for k in range(1, len(maps)))
        self.to_rgb = nn.ModuleList(EqualizedConv2d(m, channels, 1, gain=1.0) for m in maps)

    def forward(self, z, level: int, alpha: float):
        h = self.norm(lrelu(self.dense(self.norm(z)).reshape(len(z), -1, *self.base)))
        h = self.norm(lrelu(self.conv(h)))
        prev = h
        for k in range(1, level + 1):
            prev, h = h, self.blocks[k - 1](h)
        out = self.to_rgb[level](h)
        if level > 0 and alpha < 1:  # fade-in: blend with the previous resolution's image
            old = F.interpolate(self.to_rgb[level - 1](prev), scale_factor=2, mode="nearest")
            out = torch.lerp(old, out, alpha)
        return out


class Discriminator(nn.Module):
    def __init__(self, channels: int, base, maps: list[int], group: int):
        super().__init__()
        self.from_rgb = nn.ModuleList(EqualizedConv2d(channels, m, 1) for m in maps)
        self.blocks = nn.ModuleList(DBlock(maps[k], maps[k - 1]) for k in range(1, len(maps)))
        self.mbstd = MinibatchStdDev(group)
        self.conv = EqualizedConv2d(maps[0] + 1, maps[0], 3)
        self.dense = EqualizedLinear(maps[0] * base[0] * base[1], maps[0])
        self.out = EqualizedLinear(maps[0], 1, gain=1.0)

    def forward(self, u, level: int, alpha: float):
        h = lrelu(self.from_rgb[level](u))
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1:  # fade-in: blend with the previous resolution's input path
                old = lrelu(self.from_rgb[level - 1](F.avg_pool2d(u, 2)))
                h = torch.lerp(old, h, alpha)
        for k in range(level - 1, 0, -1):
            h = self.blocks[k - 1](h)
        h = lrelu(self.conv(self.mbstd(h)))
        return self.out(lrelu(self.dense(h.flatten(1)))).squeeze(1)


@register("pggan", config=PGGANConfig, presets=PRESETS)
class PGGAN(AdversarialModel):
    """Progressive GAN (Karras et al. 2018): growing G and D, WGAN-GP, equalized LR."""

    train_defaults = {"lr": 1e-3, "betas": (0.0, 0.99), "ema": 0.999, "grad_clip": 0.0}

    def __init__(self, image_shape, levels, config: PGGANConfig):
        super().__init__(image_shape, levels, config)
        c, h, w = image_shape
        self.base, doublings = resolution_ladder(h, w)
        if (h, w) != (self.base[0] << doublings, self.base[1] << doublings):
            raise ConfigError(f"pggan needs sides that halve down to a base size, got {h}x{w}")
        if config.images_per_phase < 1:
            raise ConfigError(f"images_per_phase must be positive, got {config.images_per_phase}")
        self.latent_dim = config.latent_dim
        self.maps = [
            min(config.max_maps, max(1, config.map_base // 2 ** (k + 1)))
            for k in range(doublings + 1)
        ]
        self.generator = Generator(config.latent_dim, c, self.base, self.maps)
        self.discriminator = Discriminator(c, self.base, self.maps, config.mbstd_group)
        self.register_buffer("level", torch.zeros((), dtype=torch.long))
        self.register_buffer("alpha", torch.ones((), dtype=torch.float64))

    @property
    def top_level(self) -> int:
        return len(self.maps) - 1

    # ------------------------------------------------------------------ the schedule
    def schedule(self, images: int) -> tuple[int, float, bool]:
        """``(level, alpha, fading)`` after ``images`` real images have been shown.

        Level 0 trains for ``P = images_per_phase`` images; then each level k >= 1
        fades in over P images (alpha = fraction done) and stabilises over P.
        """
        p = self.config.images_per_phase
        if images < p:
            return 0, 1.0, False
        k, r = divmod(images - p, 2 * p)
        level = k + 1
        if level > self.top_level:
            return self.top_level, 1.0, False
        return (level, r / p, True) if r < p else (level, 1.0, False)

    def set_images_seen(self, images: int) -> None:
        level, alpha, _ = self.schedule(images)
        self.level.fill_(level)
        self.alpha.fill_(alpha)

    def progress_state(self) -> dict:
        level, alpha = int(self.level), float(self.alpha)
        size = (self.base[0] << level, self.base[1] << level)
        phase = f"{'fade' if alpha < 1 else 'stable'}-{size[0]}x{size[1]}"
        return {"phase": phase, "resolution": size[0], "level": level, "alpha": alpha}

    # ------------------------------------------------------------------ G and D at the current level
    def current_resolution(self) -> tuple[int, int]:
        level = int(self.level)
        return self.base[0] << level, self.base[1] << level

    def generate(self, z):
        """G(z) at the current resolution (see :meth:`sample` for full-size images)."""
        out = self.generator(z.to(self.dtype), int(self.level), float(self.alpha))
        return torch.sigmoid(out) if self.output == "bernoulli" else out

    def discriminate(self, u):
        return self.discriminator(u, int(self.level), float(self.alpha))

    def real_to_critic(self, x):
        """Real images at the current resolution, blended across the fade-in like G's output."""
        u = super().real_to_critic(x)
        factor = self.image_shape[1] // self.current_resolution()[0]
        if factor > 1:
            u = F.avg_pool2d(u, factor)
        alpha = float(self.alpha)
        if int(self.level) > 0 and alpha < 1:
            coarse = F.interpolate(F.avg_pool2d(u, 2), scale_factor=2, mode="nearest")
            u = torch.lerp(coarse, u, alpha)
        return u

    def image_means(self, z):
        """G(z) at the image size: before the growth reaches it, the current resolution's
        output with each pixel repeated (nearest upsampling), for samples and AIS alike."""
        out = self.generate(z)
        factor = self.image_shape[1] // out.shape[-2]
        return F.interpolate(out, scale_factor=factor, mode="nearest") if factor > 1 else out
