"""Bernoulli (binary images) and K-way categorical (PixelRNN §2.2, 256-way softmax).

:class:`Bernoulli` and :class:`Categorical` model each sub-pixel given the network's
output at that pixel. For colour images the masked network makes channel c's
parameters depend on channels < c of the same pixel (R -> G -> B, PixelRNN §3.4),
so one set of parameters per sub-pixel is all these likelihoods need.

:class:`SubpixelSoftmax` is the softmax for a network that sees whole pixels only
(PixelCNN++): the R -> G -> B order moves from the masks into the likelihood.
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


class SubpixelSoftmax(PixelLikelihood):
    """A K-way softmax per sub-pixel, R -> G -> B, from one set of parameters per pixel.

    For a whole-pixel network (PixelCNN++'s ablation of its mixture, §3): the
    parameters at a pixel are, per channel c, base logits ``a_c [K]`` and, per
    earlier channel c' < c, slopes ``b_cc' [K]``; channel c's logits are

        logits_c(v) = a_c(v) + sum_{c' < c} b_cc'(v) * x_c'

    with ``x_c'`` the earlier sub-pixel on [-1, 1]. A tilt linear in ``x_c'`` is enough
    to centre G on R: ``a(v) = -t v^2 / 2`` and ``b(v) = t v`` give
    ``logits(v) = -t (v - x_R)^2 / 2 + const``. ``P = C K + C(C-1)/2 K``: 1,536 for
    RGB at 256 levels (the mixture's 100). Every channel is normalised over the
    levels, so the pixel's distribution is exact; the sampler draws one uniform
    per channel, R first.

    NOTE: the paper does not say how its softmax variant conditions on the earlier
    sub-pixels; this linear tilt (the softmax analogue of the mixture's linear means,
    §2.2) keeps the network identical across the two likelihoods, so the ablation
    changes the output distribution only.
    """

    joint = True

    def __init__(self, channels: int, levels: int):
        if levels < 2:
            raise ValueError(f"levels must be at least 2, got {levels}")
        super().__init__(channels, levels)
        self.num_slopes = channels * (channels - 1) // 2

    @property
    def num_params(self) -> int:
        return (self.channels + self.num_slopes) * self.levels

    @property
    def uniforms_per_pixel(self) -> int:
        return self.channels

    def channel_logits(self, params: torch.Tensor, x: torch.Tensor, channel: int) -> torch.Tensor:
        """Logits ``[B, K, ...]`` of ``channel`` given the pixel's earlier channels in ``x``
        (``[B, >= channel, ...]`` levels; entries from ``channel`` on are not read)."""
        b, p, *rest = params.shape
        if p != self.num_params:
            raise ValueError(f"expected {self.num_params} parameters per pixel, got {p}")
        k, c = self.levels, self.channels
        if params.dtype in (torch.float16, torch.bfloat16):
            params = params.float()
        logits = params[:, channel * k : (channel + 1) * k]
        first = c * k + (channel * (channel - 1) // 2) * k  # slopes (0, c), (1, c), ...
        for prev in range(channel):
            slope = params[:, first + prev * k : first + (prev + 1) * k]
            xu = x[:, prev].to(params.dtype) * (2.0 / (k - 1)) - 1.0
            logits = logits + slope * xu[:, None]
        return logits

    def log_prob(self, params, x):
        out = [
            -F.cross_entropy(self.channel_logits(params, x, c), x[:, c], reduction="none")
            for c in range(self.channels)
        ]
        return torch.stack(out, 1)

    def sample_pixel(self, params: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """``params [B, P]``, uniforms ``u [B, C]`` -> levels ``[B, C]``, inverse CDF per channel."""
        out = torch.zeros(len(params), self.channels, dtype=torch.long, device=params.device)
        for c in range(self.channels):
            cdf = torch.softmax(self.channel_logits(params, out, c), dim=-1).cumsum(-1)
            out[:, c] = (u[:, c, None].to(cdf.dtype) > cdf).sum(-1).clamp(max=self.levels - 1)
        return out


def for_levels(channels: int, levels: int) -> PixelLikelihood:
    """Bernoulli for binary data, categorical otherwise."""
    if levels < 2:
        raise ValueError(f"levels must be at least 2, got {levels}")
    return Bernoulli(channels) if levels == 2 else Categorical(channels, levels)
