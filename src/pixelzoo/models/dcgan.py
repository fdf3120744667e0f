"""DCGAN (Radford, Metz, Chintala 2016, "Unsupervised Representation Learning with
Deep Convolutional Generative Adversarial Networks"), §3-4.

The paper's architecture guidelines (§3):

- no pooling: strided convolutions in the discriminator, fractionally-strided
  (transposed) convolutions in the generator, each doubling or halving the size;
- batch normalization in both networks, except the generator's output layer and
  the discriminator's input layer;
- ReLU in the generator with tanh at the output; LeakyReLU(0.2) in the
  discriminator;
- the first generator layer is a linear projection of z reshaped to a small
  image; the last discriminator layer flattens into one logit.

Training (§4): Adam with lr 2e-4 and beta1 0.5, minibatches of 128, weights from
N(0, 0.02) (batch-norm scales from N(1, 0.02)).

Sizes: the generator starts at the base size of
:func:`~pixelzoo.nn.sizes.resolution_ladder` (4x4 for 8x8 and 32x32,
7x7 for 28x28) and doubles until the image size, halving its feature maps each
time: 32x32 with ``filters=128`` is 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32xC.

NOTE: the paper's networks are for 64x64 images (4 transposed convolutions from
4x4x1024); the same guidelines are applied here to the data's size. For binary
data the generator can end in a sigmoid (Bernoulli probabilities, see
:mod:`pixelzoo.models.adversarial`) instead of tanh.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.models.adversarial import LOSSES, OUTPUTS, AdversarialModel
from pixelzoo.models.registry import register
from pixelzoo.nn.sizes import resolution_ladder
from pixelzoo.utils.settings import setting


@dataclass
class DCGANConfig:
    """Hyper-parameters of a DCGAN (see the module docstring).

    Args:
        latent_dim: size of the latent vector z ~ N(0, I).
        filters: maps of the generator's last hidden layer and the discriminator's
            first (doubled at every halving of the size).
        output: "tanh", "bernoulli" (binary data) or "auto" (bernoulli for binary data).
        loss: "nonsaturating" (DCGAN) or "wgan-gp".
        batch_norm: batch normalization in both networks (§3).
    """

    latent_dim: int = setting(100, low=1, high=4096)
    filters: int = setting(64, low=1, high=1024)
    output: str = setting("auto", choices=OUTPUTS)
    loss: str = setting("nonsaturating", choices=LOSSES)
    batch_norm: bool = True


PRESETS = {
    # A fast demo on the 8x8 digits.
    "default": {"latent_dim": 32, "filters": 32},
    "digits": {"latent_dim": 32, "filters": 32},
    # 28x28: 7x7x128 -> 14x14x64 -> 28x28.
    "mnist": {"latent_dim": 100, "filters": 64},
    "binarized_mnist": {"latent_dim": 100, "filters": 64, "output": "bernoulli"},
    # 32x32 colour: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x3 (the paper's widths).
    "cifar10": {"latent_dim": 100, "filters": 128},
    # Ours, for 32x32 colour on a CPU: half the paper's widths (4x4x256 -> ... -> 32x32x3).
    "cifar10_cpu": {"latent_dim": 100, "filters": 64},
    # The smallest model with every part, for the tests.
    "tiny": {"latent_dim": 8, "filters": 8},
}


class Generator(nn.Module):
    def __init__(self, latent_dim, channels, base, doublings, filters, batch_norm, out_fn):
        super().__init__()
        widths = [filters * 2 ** (doublings - 1 - k) for k in range(doublings)]  # widest first
        self.base = base
        norm = nn.BatchNorm2d if batch_norm else lambda c: nn.Identity()
        self.project = nn.Linear(latent_dim, widths[0] * base[0] * base[1], bias=not batch_norm)
        self.project_norm = nn.Sequential(norm(widths[0]), nn.ReLU())
        layers = []
        for k in range(doublings):
            last = k == doublings - 1
            out = channels if last else widths[k + 1]
            layers.append(nn.ConvTranspose2d(widths[k], out, 4, 2, 1, bias=last or not batch_norm))
            layers += [out_fn] if last else [norm(out), nn.ReLU()]
        self.up = nn.Sequential(*layers)

    def forward(self, z):
        h = self.project(z).reshape(len(z), -1, *self.base)
        return self.up(self.project_norm(h))


class Discriminator(nn.Module):
    def __init__(self, channels, base, doublings, filters, batch_norm):
        super().__init__()
        layers, width = [], channels
        for k in range(doublings):
            out = filters * 2**k
            layers.append(nn.Conv2d(width, out, 4, 2, 1, bias=k == 0 or not batch_norm))
            if k > 0 and batch_norm:  # none on the input layer (§3)
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.LeakyReLU(0.2))
            width = out
        self.down = nn.Sequential(*layers)
        self.logit = nn.Linear(width * base[0] * base[1], 1)

    def forward(self, u):
        return self.logit(self.down(u).flatten(1)).squeeze(1)


@register("dcgan", config=DCGANConfig, presets=PRESETS)
class DCGAN(AdversarialModel):
    """DCGAN (Radford et al. 2016): strided-convolution G and D with batch norm."""

    train_defaults = {"lr": 2e-4, "betas": (0.5, 0.999), "grad_clip": 0.0}

    def __init__(self, image_shape, levels, config: DCGANConfig):
        super().__init__(image_shape, levels, config)
        c, h, w = image_shape
        base, doublings = resolution_ladder(h, w)
        if doublings == 0:
            raise ConfigError(f"dcgan needs images of at least 8x8 with even sides, got {h}x{w}")
        self.latent_dim = config.latent_dim
        out_fn = nn.Sigmoid() if self.output == "bernoulli" else nn.Tanh()
        self.generator = Generator(
            config.latent_dim, c, base, doublings, config.filters, config.batch_norm, out_fn
        )
        self.discriminator = Discriminator(c, base, doublings, config.filters, config.batch_norm)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Weights from N(0, 0.02), batch-norm scales from N(1, 0.02), biases 0 (§4)."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def generate(self, z):
        return self.generator(z.to(self.dtype))

    def discriminate(self, u):
        return self.discriminator(u)
