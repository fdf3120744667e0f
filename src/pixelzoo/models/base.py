"""The contract every autoregressive model implements.

Images are integer tensors ``[B, C, H, W]`` with values in ``0..levels-1``. A
subclass defines ``forward(x, cond) -> params [B, P, H, W]`` such that the
parameters at pixel (i, j), colour c depend only on sub-pixels before it in
raster order, R -> G -> B. ``forward`` is split into :meth:`embed` (integers ->
floats in [-1, 1]) and :meth:`network` (floats -> parameters), so tests can
differentiate through the network's input. Everything else - exact log-likelihood, the training
loss, sampling and completion - is written once here.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from pixelzoo.data.base import to_unit
from pixelzoo.errors import InputError
from pixelzoo.likelihoods import for_levels


class AutoregressiveModel(nn.Module):
    """Base class: exact likelihood and ancestral sampling for a causal network.

    Args:
        image_shape: ``(C, H, W)`` of the images modelled.
        levels: number of values K of every sub-pixel.
        config: the model's config dataclass (saved with checkpoints).
    """

    registry_name = "?"
    conditional = False

    def __init__(self, image_shape: tuple[int, int, int], levels: int, config):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.config = config
        self.likelihood = for_levels(image_shape[0], levels)

    @property
    def dims(self) -> int:
        """Number of sub-pixels C*H*W (the 'dim' of bits/dim)."""
        c, h, w = self.image_shape
        return c * h * w

    def spec(self) -> dict:
        """What :func:`pixelzoo.models.build` needs to rebuild this model (JSON-able)."""
        return {
            "name": self.registry_name,
            "image_shape": list(self.image_shape),
            "levels": self.levels,
            "config": dataclasses.asdict(self.config),
        }

    def check_images(self, x) -> None:
        """Raise :class:`InputError` unless ``x`` is a valid batch of images for this model."""
        name = self.registry_name
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name}: images must be a torch.Tensor, got {type(x).__name__}")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise InputError(
                f"{name}: images must be an integer tensor with values in 0..{self.levels - 1}, "
                f"got dtype {x.dtype} (quantize with pixelzoo.data.quantize first)"
            )
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise InputError(
                f"{name}: images must have shape [B, {', '.join(map(str, self.image_shape))}], "
                f"got {list(x.shape)}"
            )
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.levels):
            raise InputError(
                f"{name}: image values must be in 0..{self.levels - 1}, found values in "
                f"{int(x.min())}..{int(x.max())}"
            )

    def check_cond(self, cond, batch: int) -> None:
        if not self.conditional and cond is not None:
            raise InputError(f"{self.registry_name} is unconditional: cond must be None")

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Integer images -> float network input in [-1, 1]."""
        return to_unit(x, self.levels)

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        """Float images ``[B, C, H, W]`` -> parameters ``[B, P, H, W]`` (causal in u)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """Distribution parameters ``[B, P, H, W]`` for every sub-pixel."""
        return self.network(self.embed(x), cond)

    def log_prob(self, x: torch.Tensor, cond=None, reduction: str = "sum") -> torch.Tensor:
        """Exact log-likelihood in nats.

        Args:
            x: integer images ``[B, C, H, W]`` in ``0..levels-1``.
            cond: conditioning input (None for unconditional models).
            reduction: ``"sum"`` -> ``[B]`` per image; ``"none"`` -> ``[B, C, H, W]``,
                the log-probability of each sub-pixel given all before it.
        """
        if reduction not in ("sum", "none"):
            raise InputError(f"reduction must be 'sum' or 'none', got {reduction!r}")
        self.check_images(x)
        self.check_cond(cond, len(x))
        lp = self.likelihood.log_prob(self(x, cond), x)
        return lp if reduction == "none" else lp.flatten(1).sum(1)

    def loss(self, batch) -> torch.Tensor:
        """Mean negative log-likelihood in nats per sub-pixel (= bits/dim * ln 2).

        ``batch`` is images ``x`` or a pair ``(x, cond)``. Dividing by C*H*W keeps
        the loss's scale (and so learning rates and gradient clipping) comparable
        across image sizes.
        """
        x, cond = batch if isinstance(batch, (tuple, list)) else (batch, None)
        return -self.log_prob(x, cond).mean() / self.dims

    def sample(
        self, n: int, cond=None, generator: torch.Generator | None = None, *, progress: bool = False
    ) -> torch.Tensor:
        """``n`` images ``[n, C, H, W]`` drawn by ancestral sampling, seeded by ``generator``."""
        from pixelzoo.sampling import sample

        return sample(self, n, cond, generator, progress=progress)

    def complete(
        self,
        x: torch.Tensor,
        rows: int,
        cond=None,
        generator: torch.Generator | None = None,
        *,
        progress: bool = False,
    ) -> torch.Tensor:
        """Keep the top ``rows`` rows of images ``x`` and sample the rest."""
        from pixelzoo.sampling import complete

        return complete(self, x, rows, cond, generator, progress=progress)
