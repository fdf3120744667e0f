"""Progressive GAN building blocks (Karras et al. 2018, §3-4).

- :class:`EqualizedLinear` / :class:`EqualizedConv2d` - "equalized learning rate"
  (§4.1): weights are drawn from N(0, 1) and multiplied at run time by the He
  constant ``gain / sqrt(fan_in)``, so that Adam's per-parameter step sizes are
  the same for every layer whatever its fan-in.
- :class:`PixelNorm` - pixelwise feature vector normalization in the generator
  (§4.2): ``b = a / sqrt(mean_c(a^2) + 1e-8)`` at every pixel.
- :class:`MinibatchStdDev` - the minibatch standard deviation feature (§3): the
  standard deviation of every feature at every pixel over a group of images,
  averaged into one number per group and appended as one constant feature map.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class EqualizedLinear(nn.Module):
    """``y = x (c W)^T + b`` with ``W ~ N(0, 1)`` and ``c = gain / sqrt(in_features)``."""

    def __init__(self, in_features: int, out_features: int, gain: float = math.sqrt(2)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """A stride-1 'same' convolution with run-time He scaling (``fan_in = C_in k^2``)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel: int, gain: float = math.sqrt(2)
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class PixelNorm(nn.Module):
    """Scale every pixel's feature vector to unit root-mean-square (§4.2, epsilon 1e-8)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-8)


class MinibatchStdDev(nn.Module):
    """Append one feature map: the mean over features and pixels of the per-group std (§3).

    The batch is split into groups of ``group_size`` images (image i belongs to
    group ``i % (B / G)``, as in the reference implementation); within a group the
    (biased) standard deviation of every feature at every pixel is taken, averaged
    over features and pixels, and broadcast to a constant map for the group's
    images. When the batch is not divisible by ``group_size`` the largest divisor of
    the batch size below it is used.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group_size, b)
        while b % g:
            g -= 1
        y = x.float().reshape(g, b // g, c, h, w)
        std = torch.sqrt(y.var(0, unbiased=False) + 1e-8)  # [B/G, C, H, W]
        stat = std.mean((1, 2, 3)).to(x.dtype)  # one number per group
        stat = stat.repeat(g)[:, None, None, None].expand(b, 1, h, w)
        return torch.cat([x, stat], 1)
