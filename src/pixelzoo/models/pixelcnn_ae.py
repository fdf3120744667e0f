"""The PixelCNN auto-encoder: a convolutional encoder and a conditional Gated PixelCNN decoder.

van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders",
NeurIPS, §2.3 (conditioning on a latent vector h) and §3.4 (PixelCNN
auto-encoders: the decoder of a convolutional auto-encoder replaced by a
conditional PixelCNN, trained end to end; bottlenecks of 10 and 100 units).

The encoder maps an image x to a code z = e(x) of ``code_dim`` numbers; the
decoder is a Gated PixelCNN conditioned on z as a vector (eq. 4), and the
training objective is the exact decoder NLL -log p(x | e(x)). Because the
decoder models the local detail, the code is free to keep the global structure
(the paper's Figure 4).

``log_prob(x)`` is log p(x | e(x)), **not** a likelihood of x (the code is computed
from x itself); ``log_prob(x, cond=z)`` is log p(x | z) for any code z, exactly
normalised over x. ``sample(n, cond=z)`` decodes codes; :meth:`reconstruct`
decodes the codes of given images several times.

NOTE: the paper's encoder is not specified beyond "a convolutional network";
ours is 3x3 convolutions, stride-2 4x4 convolutions down to at most 7x7
(8x8 images: 4x4), and a linear map to the code.
NOTE: the paper's auto-encoders model 32x32 ImageNet patches; our presets are for
digits and binarized MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pixelzoo.errors import ConfigError, InputError
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNConfig
from pixelzoo.models.registry import register
from pixelzoo.sampling.grids import reconstruction_grid
from pixelzoo.utils.settings import setting


@dataclass
class PixelCNNAEConfig:
    """PixelCNN auto-encoder hyper-parameters.

    Args:
        code_dim: size of the bottleneck z.
        enc_hidden: feature maps of the encoder's first layer (doubled at every
            down-sampling).
        hidden, layers, first_kernel, kernel, out_hidden: the Gated PixelCNN
            decoder's (see :class:`GatedPixelCNNConfig`).
    """

    code_dim: int = setting(10, low=1, high=4096)
    enc_hidden: int = setting(32, low=1, high=1024)
    hidden: int = setting(32, low=1, high=4096)
    layers: int = setting(5, low=0, high=1000)
    first_kernel: int = setting(7, low=1, high=31)
    kernel: int = setting(3, low=1, high=31)
    out_hidden: int = setting(64, low=1, high=8192)


PRESETS = {
    # Digits (8x8): the default Gated PixelCNN as decoder, a 10-number code.
    "default": dict(code_dim=10, enc_hidden=32, hidden=32, layers=5, out_hidden=64),
    # Binarized MNIST: the decoder of gated_pixelcnn's binarized_mnist_cpu preset.
    "binarized_mnist": dict(code_dim=10, enc_hidden=32, hidden=32, layers=8, out_hidden=64),
    # §3.4's larger bottleneck.
    "binarized_mnist_64": dict(code_dim=64, enc_hidden=32, hidden=32, layers=8, out_hidden=64),
    # The smallest model with every part, for the property tests.
    "tiny": dict(code_dim=3, enc_hidden=4, hidden=6, layers=2, out_hidden=12),
}


class Encoder(nn.Module):
    """``[B, C, H, W]`` in [-1, 1] -> ``[B, code_dim]``."""

    def __init__(self, image_shape, hidden: int, code_dim: int):
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = [nn.Conv2d(c, hidden, 3, padding=1), nn.ReLU()]
        maps = hidden
        while min(h, w) >= 8 and len(layers) < 8:  # at most 3 down-samplings
            layers += [nn.Conv2d(maps, 2 * maps, 4, stride=2, padding=1), nn.ReLU()]
            maps, h, w = 2 * maps, h // 2, w // 2
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.code = nn.Linear(maps * h * w, code_dim)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self.code(self.net(u))


@register("pixelcnn_ae", config=PixelCNNAEConfig, presets=PRESETS)
class PixelCNNAutoEncoder(AutoregressiveModel):
    """PixelCNN auto-encoder (van den Oord et al. 2016, §3.4): conv encoder, Gated PixelCNN decoder."""

    cond_optional = True  # cond=None means "the image's own code"

    def __init__(self, image_shape, levels, config: PixelCNNAEConfig):
        super().__init__(image_shape, levels, config)
        if config.code_dim < 1 or config.enc_hidden < 1:
            raise ConfigError("code_dim and enc_hidden must be positive")
        self.cond_shape = (config.code_dim,)  # cond, when given, is a code
        self.encoder = Encoder(image_shape, config.enc_hidden, config.code_dim)
        decoder_config = GatedPixelCNNConfig(
            hidden=config.hidden,
            layers=config.layers,
            first_kernel=config.first_kernel,
            kernel=config.kernel,
            out_hidden=config.out_hidden,
            cond_shape=(config.code_dim,),
        )
        self.decoder = GatedPixelCNN(image_shape, levels, decoder_config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Integer images ``[B, C, H, W]`` -> codes ``[B, code_dim]``."""
        self.check_images(x)
        return self.encoder(self.embed(x))

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        code = self.encoder(u) if cond is None else cond
        return self.decoder.network(u, code)

    def cached_stepper(self, x, cond=None):
        """The decoder's cached stepper given codes; with ``cond=None`` the condition is the
        code of the (changing) image itself, which only the naive sampler evaluates."""
        return None if cond is None else self.decoder.cached_stepper(x, cond)

    def sample(self, n, cond=None, generator=None, *, progress: bool = False, sampler="auto"):
        """Decode codes ``cond [n, code_dim]`` (e.g. ``model.encode(x)``) into ``n`` images."""
        if cond is None:
            raise InputError(
                "pixelcnn_ae decodes codes: pass cond = model.encode(x) (a float tensor "
                f"[{n}, {self.config.code_dim}]), or use model.reconstruct(x)"
            )
        return super().sample(n, cond, generator, progress=progress, sampler=sampler)

    @torch.no_grad()
    def reconstruct(
        self,
        x: torch.Tensor,
        samples: int = 4,
        generator: torch.Generator | None = None,
        *,
        progress: bool = False,
        sampler: str = "auto",
    ) -> torch.Tensor:
        """``samples`` decodings of each image's code: ``[B, samples, C, H, W]``."""
        was_training = self.training
        self.eval()
        try:
            code = self.encode(x.to(self.device))
        finally:
            self.train(was_training)
        codes = code.repeat_interleave(samples, 0)
        out = self.sample(len(codes), codes, generator, progress=progress, sampler=sampler)
        return out.view(len(x), samples, *self.image_shape)

    def completion_cond(self, x, labels):
        """Completion given the code of each whole image (what the decoder was trained with)."""
        return self.encode(x.to(self.device))

    def preview(self, n: int, dataset, generator=None):
        """Rows of: a validation image, then three decodings of its code."""
        x, _ = dataset.get_batch(torch.arange(min(max(1, n // 4), len(dataset))), generator)
        return reconstruction_grid(self, x, 3, generator)
