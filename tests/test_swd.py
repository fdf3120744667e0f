"""Sliced Wasserstein distance on Laplacian-pyramid patches: known answers."""

from __future__ import annotations

import pytest
import torch

from pixelzoo import data
from pixelzoo.errors import InputError
from pixelzoo.evaluation.swd import laplacian_pyramid, pyr_down, pyr_up, sliced_wasserstein, swd


def test_pyramid_levels_and_perfect_reconstruction():
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    levels = laplacian_pyramid(x)
    assert [tuple(lv.shape[-2:]) for lv in levels] == [(32, 32), (16, 16), (8, 8)]
    # Collapsing the pyramid with the reference's pyrUp gives the image back.
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        rec = band + pyr_up(rec, tuple(band.shape[-2:]))
    torch.testing.assert_close(rec, x)
    assert [lv.shape[-1] for lv in laplacian_pyramid(torch.zeros(1, 1, 28, 28))] == [28, 14]
    assert len(laplacian_pyramid(torch.zeros(1, 1, 8, 8))) == 1


def test_pyr_up_is_opencvs_zero_insertion_and_binomial_filter():
    """pyrUp of a constant is the constant (away from nothing: reflect padding keeps the
    edges), and of a single impulse the 4x binomial kernel around its doubled position."""
    c = torch.full((1, 1, 4, 4), 3.0, dtype=torch.float64)
    torch.testing.assert_close(
        pyr_up(c, (8, 8)), torch.full((1, 1, 8, 8), 3.0, dtype=torch.float64)
    )
    impulse = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    impulse[0, 0, 2, 2] = 1.0
    up = pyr_up(impulse, (16, 16))[0, 0]
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64) / 16
    torch.testing.assert_close(up[2:7, 2:7], 4 * k[:, None] * k[None, :])
    assert float(up.sum()) == pytest.approx(4.0)  # zero insertion keeps a quarter of the mass
    assert pyr_up(torch.zeros(1, 1, 4, 4), (7, 7)).shape[-2:] == (7, 7)  # odd sizes crop
    assert pyr_down(torch.zeros(1, 1, 7, 7)).shape[-2:] == (4, 4)


def test_sliced_wasserstein_of_1d_shift_is_the_shift():
    # Along any unit direction u, shifting every point by s*e1 shifts projections by s*u1;
    # the mean over directions of |s u1| is s E|u1|, checked against a direct average.
    g = torch.Generator().manual_seed(0)
    a = torch.randn(5000, 3, generator=g, dtype=torch.float64)
    b = a + torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)
    dirs = torch.nn.functional.normalize(
        torch.randn(3, 256, generator=torch.Generator().manual_seed(1), dtype=torch.float64), dim=0
    )
    expected = float((2.0 * dirs[0]).abs().mean())
    got = sliced_wasserstein(a, b, 256, torch.Generator().manual_seed(1))
    assert got == pytest.approx(expected, rel=1e-9)


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift():
    images = data.load("digits", "train").images.long()[:512]
    same = swd(images, images, 17)
    assert same["levels"] == [0.0] and same["resolutions"] == [8]
    other = data.load("digits", "valid").images.long()[:128]
    half = images[:128]
    base = swd(half, other, 17)["mean"]  # two samples of the same distribution
    worse = []
    for noise in (2, 6):
        g = torch.Generator().manual_seed(noise)
        noisy = (other + torch.randint(-noise, noise + 1, other.shape, generator=g)).clamp(0, 16)
        worse.append(swd(half, noisy, 17)["mean"])
    assert base < worse[0] < worse[1], (base, worse)


def test_swd_errors():
    x = torch.zeros(4, 1, 8, 8, dtype=torch.long)
    with pytest.raises(InputError, match="same shape"):
        swd(x, x[:2], 2)
    with pytest.raises(InputError, match="integer images"):
        swd(x.float(), x.float(), 2)
    with pytest.raises(InputError, match="smaller than"):
        swd(torch.zeros(2, 1, 5, 5, dtype=torch.long), torch.zeros(2, 1, 5, 5, dtype=torch.long), 2)
