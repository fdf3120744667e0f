"""Image sizes of networks that grow an image from a small base (DCGAN, PGGAN, the VAE decoder)."""

from __future__ import annotations


def resolution_ladder(height: int, width: int) -> tuple[tuple[int, int], int]:
    """The base size and the number of doublings from it to ``(height, width)``.

    Halve both sides while they stay whole numbers of at least 4: 32x32 -> (4, 4)
    and 3 doublings, 28x28 -> (7, 7) and 2, 8x8 -> (4, 4) and 1.
    """
    h, w, doublings = height, width, 0
    while h % 2 == 0 and w % 2 == 0 and h // 2 >= 4 and w // 2 >= 4:
        h, w, doublings = h // 2, w // 2, doublings + 1
    return (h, w), doublings
