"""PixelCNN++.

Salimans, Karpathy, Chen, Kingma 2017, "PixelCNN++: Improving the PixelCNN with
Discretized Logistic Mixture Likelihood and Other Modifications", ICLR.
§2.1-2.2 (discretized logistic mixture, whole-pixel conditioning:
:mod:`pixelzoo.likelihoods.logistic`), §2.3 (down-sampling instead of dilation),
§2.4 (short-cut connections), §2.5 (dropout), §3 (CIFAR-10: 2.92 bits/dim; the
class-conditional model 2.94).

The network (the reference's ``model_spec``; building blocks in
:mod:`pixelzoo.nn.shifted`) runs two streams side by side:

* ``u`` sees the rows above the pixel (down-shifted convolutions),
* ``ul`` sees the rows above and the pixels to the left (down-right-shifted
  convolutions, plus ``u`` through each block's shortcut input).

The first layer reads the image plus a channel of ones (so that zero padding is
told apart from a zero pixel) and shifts both streams so that they exclude the
pixel itself: ``u0 = shift_down(conv_2x3(x))``, ``ul0 = shift_down(conv_1x3(x)) +
right_shift(conv_2x1(x))``. Then, at each of R resolutions (32, 16, 8 for
CIFAR-10), ``blocks`` gated ResNet blocks per stream, with a stride-2 shifted
convolution between resolutions; every intermediate map is kept. The down pass
mirrors it back up with stride-2 transposed convolutions, and every one of its
blocks takes the matching kept map of the up pass as its shortcut input
(``blocks`` at the lowest resolution, ``blocks + 1`` at the others, so that the
maps after each down-sampling are used too): the long-range shortcuts of §2.4.
Finally ``nin(elu(ul))`` gives the mixture's parameters at each pixel.

NOTE: the reference initialises weight normalisation from the statistics of a
first batch (data-dependent init); here the weights start from PyTorch's default
initialisation with ``g = ||v||``, and conv2 of each block is scaled by 0.1 as the
reference's ``init_scale=0.1``.
NOTE: dropout (§2.5) is :class:`pixelzoo.nn.Dropout`, whose masks come from 16-bit
uniform integers, four to a 64-bit random draw: ``nn.Dropout``'s function (the
probability rounded to a multiple of 2^-16, exact for 0.5) with a quarter of its random
draws, which had been the largest cost of a training step after the convolutions.
NOTE: image sizes need not be multiples of 2^(R-1): down-sampling rounds up and
up-sampling crops to the size of the matching up-pass map.
NOTE: conditioning on a class (the paper's model) or on any vector works as in
the Gated PixelCNN (:mod:`pixelzoo.nn.conditioning`): a bias per block and
class, added to conv2's output. Spatial conditioning is not offered.
The paper's ablations (§3) are settings: ``likelihood="softmax"`` swaps the mixture
for a 256-way softmax per sub-pixel, R -> G -> B
(:class:`~pixelzoo.likelihoods.SubpixelSoftmax`; the network is unchanged),
``shortcuts=False`` removes the up-to-down pass connections of §2.4 (the down
pass's ``u`` blocks then have no shortcut input and its ``ul`` blocks only ``u``, so
the image reaches the output only through the lowest resolution: still causal, but
blind to the nearest earlier pixels at most positions),
and ``dropout=0`` the regularisation of §2.5. ``benchmarks/pixelcnn_pp_ablations.py``
trains the four variants at one budget.

NOTE: the reference trains on 8 GPUs with batch 16 each (128); the training
settings the paper uses (Adam 1e-3 decayed by 0.999995 per step, Polyak
averaging 0.9995) are the trainer's ``lr``, ``lr_decay`` and ``ema`` settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.likelihoods import DiscretizedLogisticMixture, SubpixelSoftmax
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.registry import register
from pixelzoo.nn import ConditionInput
from pixelzoo.nn.lstm import shift_down
from pixelzoo.nn.shifted import (
    DownRightShiftedConv2d,
    DownRightShiftedConvTranspose2d,
    DownShiftedConv2d,
    DownShiftedConvTranspose2d,
    GatedResnet,
    concat_elu,
    maybe_weight_norm,
    right_shift,
)
from pixelzoo.sampling.steppers import Buffer, like_model, pixel_input
from pixelzoo.utils.settings import setting


@dataclass
class PixelCNNPPConfig:
    """PixelCNN++ hyper-parameters (the reference's flag names in brackets).

    Args:
        filters: feature maps of both streams [nr_filters].
        blocks: gated ResNet blocks per stream and resolution [nr_resnet].
        components: logistic mixture components K [nr_logistic_mix].
        dropout: dropout probability inside every block [dropout_p].
        resolutions: R, number of resolutions (each half the previous one).
        likelihood: "logistic_mixture" (§2.1-2.2) or "softmax" (a 256-way softmax per
            sub-pixel, R -> G -> B; the paper's ablation, §3).
        shortcuts: the up-to-down pass connections of §2.4 (False: the ablation).
        weight_norm: weight-normalise every convolution.
        num_classes: condition on class labels ``[B]`` in ``0..num_classes-1``.
        cond_shape: condition on a float vector ``(D,)``.
    """

    filters: int = setting(160, low=1, high=2048)
    blocks: int = setting(5, low=0, high=100)
    components: int = setting(10, low=1, high=100)
    dropout: float = setting(0.5, low=0.0, below=1.0)
    resolutions: int = setting(3, low=1, high=8)
    likelihood: str = setting("logistic_mixture", choices=("logistic_mixture", "softmax"))
    shortcuts: bool = True
    weight_norm: bool = True
    num_classes: int | None = setting(None, high=100_000)
    cond_shape: tuple[int, ...] | None = setting(None, low=1, high=65_536)


PRESETS = {
    # The 8x8 digits demo (17 levels), a few seconds per epoch on 2 CPU cores.
    "default": dict(filters=32, blocks=1, components=5, dropout=0.0, resolutions=2),
    # §3, the reference's CIFAR-10 settings: 5 blocks per resolution (6 "blocks of
    # 5 ResNet layers"), 160 filters, 10 components, dropout 0.5. 2.92 bits/dim in
    # the paper; train with lr=1e-3, lr_decay=0.999995, ema=0.9995.
    "cifar10": dict(filters=160, blocks=5, components=10, dropout=0.5, resolutions=3),
    # Ours, for 256-level grey MNIST on a CPU (see the README's 30-minute run).
    "mnist": dict(filters=32, blocks=2, components=5, dropout=0.0, resolutions=3),
    # Ours, for binary MNIST: with 2 levels one logistic component is already any
    # Bernoulli, so K = 1.
    "binarized_mnist": dict(filters=48, blocks=2, components=1, dropout=0.0, resolutions=3),
    # Ours, for 32x32 colour (cifar10-jpeg) on a CPU: the paper's three resolutions and
    # 10 components at a fifth of its width; no dropout, as a CPU budget is a few epochs at
    # most, too few to overfit (dropout's effect at this budget is not yet measured).
    "cifar10_cpu": dict(filters=32, blocks=2, components=10, dropout=0.0, resolutions=3),
    # The smallest model with every part (3 resolutions), for the property tests.
    "tiny": dict(filters=6, blocks=1, components=3, dropout=0.0, resolutions=3),
}


@register("pixelcnn_pp", config=PixelCNNPPConfig, presets=PRESETS)
class PixelCNNPP(AutoregressiveModel):
    """PixelCNN++ (Salimans et al. 2017): logistic mixture, shifted convolutions, 3 resolutions."""

    def __init__(self, image_shape, levels, config: PixelCNNPPConfig):
        super().__init__(image_shape, levels, config)
        c, height, width = image_shape
        f, n, wn = config.filters, config.blocks, config.weight_norm
        if f < 1 or n < 0 or config.resolutions < 1 or config.components < 1:
            raise ConfigError(
                "filters, resolutions and components must be positive and blocks >= 0, "
                f"got {config}"
            )
        if not 0.0 <= config.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {config.dropout}")
        if self.cond_kind == "spatial":
            raise ConfigError("pixelcnn_pp is conditioned on a class or a vector, not a map")
        self.likelihood = (
            DiscretizedLogisticMixture(c, levels, config.components)
            if config.likelihood == "logistic_mixture"
            else SubpixelSoftmax(c, levels)
        )
        self.cond_input = (
            ConditionInput(self.num_classes, self.cond_shape, (height, width))
            if self.conditional
            else None
        )
        cf = self.cond_input.features if self.cond_input is not None else None

        def block(conv, aux):
            return GatedResnet(f, conv, aux, config.dropout, cf, wn)

        r = config.resolutions
        self.u_init = maybe_weight_norm(DownShiftedConv2d(c + 1, f, (2, 3)), wn)
        self.ul_init_up = maybe_weight_norm(DownShiftedConv2d(c + 1, f, (1, 3)), wn)
        self.ul_init_left = maybe_weight_norm(DownRightShiftedConv2d(c + 1, f, (2, 1)), wn)
        # Up pass: blocks per resolution, and a stride-2 convolution into each lower one.
        self.up_u = nn.ModuleList(
            nn.ModuleList(block(DownShiftedConv2d, 0) for _ in range(n)) for _ in range(r)
        )
        self.up_ul = nn.ModuleList(
            nn.ModuleList(block(DownRightShiftedConv2d, f) for _ in range(n)) for _ in range(r)
        )
        self.down_u = nn.ModuleList(
            maybe_weight_norm(DownShiftedConv2d(f, f, (2, 3), stride=2), wn) for _ in range(r - 1)
        )
        self.down_ul = nn.ModuleList(
            maybe_weight_norm(DownRightShiftedConv2d(f, f, (2, 2), stride=2), wn)
            for _ in range(r - 1)
        )
        # Down pass: index k is resolution k (0 = full); shortcuts from the up pass.
        short = f if config.shortcuts else 0
        self.dn_u = nn.ModuleList(
            nn.ModuleList(
                block(DownShiftedConv2d, short) for _ in range(n if k == r - 1 else n + 1)
            )
            for k in range(r)
        )
        self.dn_ul = nn.ModuleList(
            nn.ModuleList(
                block(DownRightShiftedConv2d, f + short) for _ in range(n if k == r - 1 else n + 1)
            )
            for k in range(r)
        )
        self.up_sample_u = nn.ModuleList(
            maybe_weight_norm(DownShiftedConvTranspose2d(f, f), wn) for _ in range(r - 1)
        )
        self.up_sample_ul = nn.ModuleList(
            maybe_weight_norm(DownRightShiftedConvTranspose2d(f, f), wn) for _ in range(r - 1)
        )
        self.output = maybe_weight_norm(nn.Conv2d(f, self.likelihood.num_params, 1), wn)
        with torch.no_grad():  # the reference's init_scale=0.1 for each block's conv2
            for m in self.modules():
                if isinstance(m, GatedResnet):
                    if hasattr(m.conv2, "parametrizations"):
                        m.conv2.parametrizations.weight.original0.mul_(0.1)
                    else:
                        m.conv2.weight.mul_(0.1)

    def condition(self, cond) -> torch.Tensor | None:
        """The vector h every block adds (one-hot labels or the float vector), or None."""
        return self.cond_input(cond) if self.cond_input is not None else None

    def first_layer(self, u: torch.Tensor):
        """Image in [-1, 1] -> the streams' first maps ``(u0, ul0)``, which exclude the pixel."""
        x = torch.cat([u, torch.ones_like(u[:, :1])], dim=1)
        u0 = shift_down(self.u_init(x))
        ul0 = shift_down(self.ul_init_up(x)) + right_shift(self.ul_init_left(x))
        return u0, ul0

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        h = self.condition(cond)
        u0, ul0 = self.first_layer(u)
        us, uls = [u0], [ul0]
        sizes = []  # each resolution's map size, for the up-sampling crops
        for k in range(self.config.resolutions):
            if k > 0:
                us.append(self.down_u[k - 1](us[-1]))
                uls.append(self.down_ul[k - 1](uls[-1]))
            sizes.append(tuple(us[-1].shape[-2:]))
            for bu, bul in zip(self.up_u[k], self.up_ul[k], strict=True):
                us.append(bu(us[-1], h=h))
                uls.append(bul(uls[-1], us[-1], h))
        a, al = us.pop(), uls.pop()
        for k in reversed(range(self.config.resolutions)):
            if k < self.config.resolutions - 1:
                a = self.up_sample_u[k](a, sizes[k])
                al = self.up_sample_ul[k](al, sizes[k])
            for bu, bul in zip(self.dn_u[k], self.dn_ul[k], strict=True):
                if self.config.shortcuts:
                    a = bu(a, us.pop(), h)
                    al = bul(al, torch.cat([a, uls.pop()], 1), h)
                else:
                    a = bu(a, None, h)
                    al = bul(al, a, h)
        return self.output(F.elu(al))  # (B, P, H, W)

    def cached_stepper(self, x, cond=None):
        return PixelCNNPPStepper(self, x, cond)


class PixelCNNPPStepper:
    """Cached sampling for PixelCNN++ (see :mod:`pixelzoo.sampling.steppers`).

    The "above" stream ``u`` at resolution k (scale s = 2^k) and row I depends on
    image rows < s I: it is computed a whole row at a time when image row s I
    begins. The "above and left" stream ``ul`` at (I, J) depends on pixels before
    (s I, s J): it is computed at that pixel, so the layers at half resolution run
    every 2nd pixel of every 2nd row, at a quarter every 4th (the paper's "strided
    layers run every 2^k steps"). Transposed convolutions read the one
    low-resolution position (or row) their output comes from.
    """

    def __init__(self, model, x: torch.Tensor, cond=None):
        n, c, h, w = x.shape
        self.model = model
        self.h = model.condition(cond)
        like = like_model(model, x)
        f, r = model.config.filters, model.config.resolutions
        self.res = r
        self.sizes = [(h, w)]
        for _ in range(r - 1):
            hh, ww = self.sizes[-1]
            self.sizes.append(((hh + 1) // 2, (ww + 1) // 2))

        def buf(ch, k, convs=()):
            return Buffer(like, n, ch, self.sizes[k], convs)

        self.x_buf = buf(c + 1, 0, [model.u_init, model.ul_init_up, model.ul_init_left])
        # Up pass: the kept maps of each resolution (as ``us`` / ``uls`` in the forward
        # pass); the last one of resolution k feeds the stride-2 convolution into k + 1.
        self.keep_u, self.keep_ul = [], []
        for k in range(r):
            down_u = [model.down_u[k]] if k < r - 1 else []
            down_ul = [model.down_ul[k]] if k < r - 1 else []
            count = model.config.blocks + 1
            self.keep_u.append([buf(f, k, down_u if b == count - 1 else []) for b in range(count)])
            self.keep_ul.append(
                [buf(f, k, down_ul if b == count - 1 else []) for b in range(count)]
            )
        # Each block's own inputs to its two convolutions.
        self.block_bufs = {}
        for k in range(r):
            for block in [*model.up_u[k], *model.up_ul[k], *model.dn_u[k], *model.dn_ul[k]]:
                self.block_bufs[id(block)] = (
                    buf(2 * f, k, [block.conv1]),
                    buf(2 * f, k, [block.conv2]),
                )
        # Down pass: u after each block (the ul blocks' shortcut) and each resolution's result.
        self.down_u = [[buf(f, k) for _ in model.dn_u[k]] for k in range(r)]
        self.out_u = [buf(f, k) for k in range(r)]
        self.out_ul = [buf(f, k) for k in range(r)]
        self.zero_row = like.new_zeros(n, f, 1, w)  # a shifted-in first row
        self.ul_top = self.zero_row

    def _block(self, block, x, a, i, j):
        """One gated ResNet block at row i (``j=None``) or position (i, j)."""
        xe, mid = self.block_bufs[id(block)]
        xe.put(concat_elu(x), i, j)
        mid.put(block.middle(xe.conv(block.conv1, i, j), a), i, j)
        return block.finish(x, mid.conv(block.conv2, i, j), self.h)

    def _u_up(self, k, i):
        m, keep = self.model, self.keep_u[k]
        if k == 0:  # shift_down(u_init(x)): row i comes from image rows i-2, i-1
            u = self.x_buf.conv(m.u_init, i - 1) if i > 0 else self.zero_row
        else:
            u = self.keep_u[k - 1][-1].conv(m.down_u[k - 1], i)
        keep[0].put(u, i)
        for b, block in enumerate(m.up_u[k]):
            u = self._block(block, u, None, i, None)
            keep[b + 1].put(u, i)

    def _ul_up(self, k, i, j):
        m, keep = self.model, self.keep_ul[k]
        if k == 0:  # shift_down(ul_init_up(x)) + right_shift(ul_init_left(x))
            ul = self.ul_top[..., j : j + 1]
            if j > 0:
                ul = ul + self.x_buf.conv(m.ul_init_left, i, j - 1)
        else:
            ul = self.keep_ul[k - 1][-1].conv(m.down_ul[k - 1], i, j)
        keep[0].put(ul, i, j)
        for b, block in enumerate(m.up_ul[k]):
            ul = self._block(block, ul, self.keep_u[k][b + 1].at(i, j), i, j)
            keep[b + 1].put(ul, i, j)

    def _u_down(self, k, i):
        m, keep = self.model, self.keep_u[k]
        if k == self.res - 1:
            u, shortcuts = keep[-1].at(i), keep[-2::-1]
        else:  # row i of the 2x3 transposed convolution comes from row i // 2 alone
            up = m.up_sample_u[k]
            full = F.conv_transpose2d(self.out_u[k + 1].at(i // 2), up.weight, up.bias, stride=2)
            u, shortcuts = full[:, :, i % 2 : i % 2 + 1, 1 : 1 + self.sizes[k][1]], keep[::-1]
        for b, (block, short) in enumerate(zip(m.dn_u[k], shortcuts, strict=True)):
            u = self._block(block, u, short.at(i) if m.config.shortcuts else None, i, None)
            self.down_u[k][b].put(u, i)
        self.out_u[k].put(u, i)

    def _ul_down(self, k, i, j):
        m, keep = self.model, self.keep_ul[k]
        if k == self.res - 1:
            ul, shortcuts = keep[-1].at(i, j), keep[-2::-1]
        else:  # position (i, j) of the 2x2 transposed convolution comes from (i // 2, j // 2)
            up = m.up_sample_ul[k]
            low = self.out_ul[k + 1].at(i // 2, j // 2)
            full = F.conv_transpose2d(low, up.weight, up.bias, stride=2)
            ul, shortcuts = full[:, :, i % 2 : i % 2 + 1, j % 2 : j % 2 + 1], keep[::-1]
        for b, (block, short) in enumerate(zip(m.dn_ul[k], shortcuts, strict=True)):
            a = self.down_u[k][b].at(i, j)
            if m.config.shortcuts:
                a = torch.cat([a, short.at(i, j)], 1)
            ul = self._block(block, ul, a, i, j)
        self.out_ul[k].put(ul, i, j)
        return ul

    def begin_row(self, i):
        """Image rows < i are final: every ``u`` row that depends on no more."""
        m = self.model
        if i > 0:
            self.ul_top = self.x_buf.conv(m.ul_init_up, i - 1)
        for k in range(self.res):
            if i % 2**k == 0:
                self._u_up(k, i >> k)
        for k in reversed(range(self.res)):
            if i % 2**k == 0:
                self._u_down(k, i >> k)

    def step(self, x, i, j, need):
        for k in range(self.res):
            if i % 2**k == 0 and j % 2**k == 0:
                self._ul_up(k, i >> k, j >> k)
        for k in reversed(range(self.res)):
            if i % 2**k == 0 and j % 2**k == 0:
                ul = self._ul_down(k, i >> k, j >> k)
        return self.model.output(F.elu(ul))[:, :, 0, 0] if need else None

    def commit(self, x, i, j):
        px = pixel_input(self.model, x, i, j)
        self.x_buf.put(torch.cat([px, torch.ones_like(px[:, :1])], 1), i, j)
