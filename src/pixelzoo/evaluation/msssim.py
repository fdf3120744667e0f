"""MS-SSIM diversity of a set of samples (Odena et al. 2017 §4.2; Karras et al. 2018 §5).

The mean multi-scale structural similarity (Wang, Simoncelli, Bovik 2003) of
random pairs of distinct images from one set: 1 for a set of copies, lower for a
more varied set. A generator that collapses onto few modes scores above its data.

The MS-SSIM math is torchmetrics'. Its standard settings (5 scales, an 11x11
Gaussian window with sigma 1.5) need images of at least 176 pixels a side, so the
scales and window are adapted to small images (:func:`ms_ssim_settings`):

=================  ======  ======  =====================================
shorter side       scales  window  e.g.
=================  ======  ======  =====================================
>= 176             5       11      the standard setting
64 .. 175          4       7
24 .. 63           3       5       28x28 MNIST, 32x32 CIFAR-10
12 .. 23           3       3
4 .. 11            2       3       8x8 digits
=================  ======  ======  =====================================

The window's sigma scales with its size (1.5 * size / 11); the scales' exponents are
the first entries of Wang et al.'s (0.0448, 0.2856, 0.3001, 0.2363, 0.1333),
renormalised to sum to 1. Images are compared in [0, 1] (``data_range = 1``).
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

from pixelzoo.data.base import check_image_set
from pixelzoo.errors import InputError

WANG_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_TABLE = ((176, 5, 11), (64, 4, 7), (24, 3, 5), (12, 3, 3), (4, 2, 3))


def ms_ssim_settings(height: int, width: int) -> dict:
    """Scales, window size, sigma and scale exponents for images of this size (module table)."""
    side = min(height, width)
    for least, scales, window in _TABLE:
        if side >= least:
            betas = WANG_BETAS[:scales]
            total = sum(betas)
            return {
                "scales": scales,
                "kernel_size": window,
                "sigma": 1.5 * window / 11,
                "betas": tuple(b / total for b in betas),
            }
    raise InputError(f"ms-ssim: images of {height}x{width} are too small (at least 4x4)")


def ms_ssim(a: torch.Tensor, b: torch.Tensor, levels: int) -> torch.Tensor:
    """MS-SSIM of each pair ``(a[i], b[i])`` of integer images, ``[N]`` (float64)."""
    check_image_set(a, "ms-ssim: a")
    check_image_set(b, "ms-ssim: b")
    if a.shape != b.shape:
        raise InputError(f"ms-ssim: shapes differ, {list(a.shape)} and {list(b.shape)}")
    s = ms_ssim_settings(*a.shape[-2:])
    return multiscale_structural_similarity_index_measure(
        a.double() / (levels - 1),
        b.double() / (levels - 1),
        kernel_size=s["kernel_size"],
        sigma=s["sigma"],
        betas=s["betas"],
        data_range=1.0,
        reduction="none",
    )


def ms_ssim_diversity(
    images: torch.Tensor, levels: int, pairs: int = 1000, seed: int = 0, batch_size: int = 500
) -> dict:
    """Mean MS-SSIM over ``pairs`` random pairs of distinct images of one set.

    Returns ``{"ms_ssim": mean, "scores": [pairs] per pair, "pairs": pairs,
    "settings": ms_ssim_settings(...)}``.
    """
    check_image_set(images, "ms-ssim: images")
    n = len(images)
    if n < 2:
        raise InputError(f"ms-ssim diversity needs at least 2 images, got {n}")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (pairs,), generator=g)
    j = (i + torch.randint(1, n, (pairs,), generator=g)) % n  # j != i
    scores = torch.cat(
        [
            ms_ssim(images[ii], images[jj], levels)
            for ii, jj in zip(i.split(batch_size), j.split(batch_size), strict=True)
        ]
    )
    return {
        "ms_ssim": float(scores.mean()),
        "scores": scores,
        "pairs": pairs,
        "settings": ms_ssim_settings(*images.shape[-2:]),
    }
