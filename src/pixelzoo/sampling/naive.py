"""Naive ancestral sampling: one full forward pass per sub-pixel.

The reference sampler. For every pixel in raster order and every colour channel
R -> G -> B, run the whole network on the partial image, read the parameters of
that sub-pixel, and draw it by inverting its CDF at a uniform from ``generator``.
Uniforms are drawn on the generator's device (the CPU by default) and moved to the
model, so the same seed gives the same images on any device whose arithmetic
agrees.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from pixelzoo.errors import InputError


def _device(model) -> torch.device:
    return next(model.parameters()).device


def _uniform(n: int, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else "cpu"
    return torch.rand(n, generator=generator, device=device)


@torch.no_grad()
def fill(
    model,
    x: torch.Tensor,
    known: torch.Tensor | None,
    cond=None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Sample every pixel of ``x [n, C, H, W]`` not marked in ``known [H, W]``, in place order."""
    n, channels, height, width = x.shape
    model.check_cond(cond, n)
    device = _device(model)
    x = x.to(device).clone()
    if isinstance(cond, torch.Tensor):
        cond = cond.to(device)
    was_training = model.training
    model.eval()
    try:
        positions = [
            (i, j)
            for i in range(height)
            for j in range(width)
            if known is None or not bool(known[i, j])
        ]
        for i, j in tqdm(positions, desc="sampling", unit="px", disable=not progress, leave=False):
            for c in range(channels):
                params = model(x, cond)[:, :, i, j]  # (n, P)
                u = _uniform(n, generator).to(device)
                x[:, c, i, j] = model.likelihood.sample_subpixel(params, c, u)
    finally:
        model.train(was_training)
    return x


def sample(
    model, n: int, cond=None, generator: torch.Generator | None = None, *, progress: bool = False
) -> torch.Tensor:
    """``n`` new images ``[n, C, H, W]`` (int64)."""
    if n < 1:
        raise InputError(f"number of samples must be at least 1, got {n}")
    x = torch.zeros(n, *model.image_shape, dtype=torch.long)
    return fill(model, x, None, cond, generator, progress)


def complete(
    model,
    x: torch.Tensor,
    rows: int,
    cond=None,
    generator: torch.Generator | None = None,
    *,
    progress: bool = False,
) -> torch.Tensor:
    """Keep rows ``0..rows-1`` of images ``x [n, C, H, W]`` and sample the rest."""
    model.check_images(x)
    height, width = model.image_shape[1:]
    if not 0 <= rows <= height:
        raise InputError(f"rows to keep must be in 0..{height}, got {rows}")
    known = torch.zeros(height, width, dtype=torch.bool)
    known[:rows] = True
    given = x.clone()
    given[:, :, rows:] = 0
    return fill(model, given, known, cond, generator, progress)
