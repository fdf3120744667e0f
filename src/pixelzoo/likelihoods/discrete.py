"""Bernoulli (binary images) and K-way categorical (PixelRNN §2.2, 256-way softmax).

Both model each sub-pixel given the network's output at that pixel. For colour
images the masked network makes channel c's parameters depend on channels < c of
the same pixel (R -> G -> B, PixelRNN §3.4), so one set of parameters per
sub-pixel is all these likelihoods need.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class PixelLikelihood:
    """Interface of a per-sub-pixel output distribution (see the package docstring).

    ``joint = False``: the parameters at a pixel give sub-pixel c given the pixel's
    earlier channels (the network sees them through its colour masks), so samplers
    run the network once per channel and call :meth:`sample_subpixel`.
    ``joint = True``: one set of parameters gives the whole pixel; samplers run the
    network once per pixel and call ``sample_pixel(params [B, P], u [B, U])`` with
    ``U = uniforms_per_pixel``.
    """

    joint = False

    def __init__(self, channels: int, levels: int):
        self.channels = channels
        self.levels = levels

    @property
    def num_params(self) -> int:
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``params [B, P, H, W]``, ``x [B, C, H, W]`` int -> ``[B, C, H, W]`` nats."""
        raise NotImplementedError

    def sample_subpixel(self, params: torch.Tensor, channel: int, u: torch.Tensor) -> torch.Tensor:
        """Draw channel ``channel`` of one pixel: ``params [B, P]``, ``u [B]`` uniforms -> ``[B]``."""
        raise NotImplementedError


class Bernoulli(PixelLikelihood):
    """p(x=1) = sigmoid(logit); one parameter per sub-pixel."""

    def __init__(self, channels: int, levels: int = 2):
        if levels != 2:
            raise ValueError(f"Bernoulli needs levels=2, got {levels}")
        super().__init__(channels, levels)

    @property
    def num_params(self) -> int:
        return self.channels

    def log_prob(self, params, x):
        return -F.binary_cross_entropy_with_logits(params, x.to(params.dtype), reduction="none")

    def sample_subpixel(self, params, channel, u):
        return (u < torch.sigmoid(params[:, channel].float())).long()


class Categorical(PixelLikelihood):
    """A K-way softmax for every sub-pixel (PixelRNN: 256-way for 8-bit images)."""

    @property
    def num_params(self) -> int:
        return self.channels * self.levels

    def logits(self, params: torch.Tensor) -> torch.Tensor:
        """``[B, C*K, ...]`` -> ``[B, C, K, ...]``."""
        b, _, *rest = params.shape
        return params.reshape(b, self.channels, self.levels, *rest)

    def log_prob(self, params, x):
        logits = self.logits(params).transpose(1, 2)  # (B, K, C, H, W): classes in dim 1
        return -F.cross_entropy(logits.float(), x, reduction="none")

    def sample_subpixel(self, params, channel, u):
        probs = torch.softmax(self.logits(params)[:, channel].float(), dim=-1)  # (B, K)
        cdf = probs.cumsum(-1)
        return (u[:, None] > cdf).sum(-1).clamp(max=self.levels - 1)


def for_levels(channels: int, levels: int) -> PixelLikelihood:
    """Bernoulli for binary data, categorical otherwise."""
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    return Bernoulli(channels) if levels == 2 else Categorical(channels, levels)
