"""MS-SSIM diversity: known answers on identical pairs, copies and real data."""

from __future__ import annotations

import pytest
import torch

from pixelzoo import data
from pixelzoo.errors import InputError
from pixelzoo.evaluation.msssim import ms_ssim, ms_ssim_diversity, ms_ssim_settings


@pytest.mark.parametrize(
    "side, scales, window",
    [(8, 2, 3), (16, 3, 3), (28, 3, 5), (32, 3, 5), (64, 4, 7), (256, 5, 11)],
)
def test_settings_are_adapted_to_the_image_size(side, scales, window):
    s = ms_ssim_settings(side, side)
    assert (s["scales"], s["kernel_size"]) == (scales, window)
    assert sum(s["betas"]) == pytest.approx(1.0)
    # torchmetrics accepts the setting: an image against itself scores 1.
    x = torch.randint(0, 256, (2, 1, side, side), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ms_ssim(x, x, 256), torch.ones(2, dtype=torch.float64))


def test_ms_ssim_is_symmetric_and_below_one_for_different_images():
    digits = data.load("digits", "train").images.long()
    a, b = digits[:50], digits[50:100]
    s_ab, s_ba = ms_ssim(a, b, 17), ms_ssim(b, a, 17)
    torch.testing.assert_close(s_ab, s_ba)
    assert (s_ab < 0.999).all() and (s_ab >= 0).all()


def test_diversity_ranks_copies_above_real_data():
    digits = data.load("digits", "train").images.long()
    real = ms_ssim_diversity(digits, 17, pairs=500)["ms_ssim"]
    copies = ms_ssim_diversity(digits[:1].repeat(100, 1, 1, 1), 17, pairs=200)["ms_ssim"]
    assert copies == pytest.approx(1.0)
    # A collapsed "generator": 5 distinct digits, each repeated, is less diverse than the data.
    collapsed = digits[:5].repeat(40, 1, 1, 1)
    few = ms_ssim_diversity(collapsed, 17, pairs=500)["ms_ssim"]
    assert real < few < 1.0, (real, few)
    # The pairs are drawn from a seed: the same set gives the same number.
    assert ms_ssim_diversity(digits, 17, pairs=500)["ms_ssim"] == real


def test_ms_ssim_errors():
    with pytest.raises(InputError, match="too small"):
        ms_ssim_settings(3, 3)
    with pytest.raises(InputError, match="integer images"):
        ms_ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), 2)
    with pytest.raises(InputError, match="at least 2"):
        ms_ssim_diversity(torch.zeros(1, 1, 8, 8, dtype=torch.long), 2)
