"""Grids of images for viewing what a model does with given images.

Each function returns integer images ``[N, C, H, W]`` in the order of the grid
and the grid's row length, ready for :func:`pixelzoo.data.images.save_grid`.
"""

from __future__ import annotations

import torch


def completion_grid(
    model,
    originals: torch.Tensor,
    labels: torch.Tensor | None,
    rows: int,
    completions: int,
    generator: torch.Generator | None = None,
    *,
    sampler: str = "auto",
    progress: bool = False,
) -> tuple[torch.Tensor, int]:
    """Per image a grid row: the image with rows ``rows..`` blanked, ``completions``
    completions of it, and the original.

    Each image is completed under the model's :meth:`completion_cond` (its label for a
    class-conditional model, its own code for the auto-encoder).
    """
    given = originals.repeat_interleave(completions, 0)
    cond = model.completion_cond(
        given, None if labels is None else labels.repeat_interleave(completions, 0)
    )
    filled = model.complete(
        given, rows, cond, generator=generator, progress=progress, sampler=sampler
    ).cpu()
    occluded = originals.clone()
    occluded[:, :, rows:] = 0
    parts = []
    for k in range(len(originals)):
        parts += [
            occluded[k : k + 1],
            filled[k * completions : (k + 1) * completions],
            originals[k : k + 1],
        ]
    return torch.cat(parts), completions + 2


def reconstruction_grid(
    model,
    originals: torch.Tensor,
    samples: int,
    generator: torch.Generator | None = None,
    *,
    sampler: str = "auto",
    progress: bool = False,
) -> tuple[torch.Tensor, int]:
    """Per image a grid row: the image, then ``samples`` decodings of its code (auto-encoders)."""
    decoded = model.reconstruct(
        originals, samples, generator, progress=progress, sampler=sampler
    ).cpu()
    return torch.cat([originals[:, None].cpu(), decoded], 1).flatten(0, 1), samples + 1
