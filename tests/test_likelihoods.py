"""The discretized logistic mixture (PixelCNN++ §2.1-2.2) is an exact, stable distribution.

* every pixel distribution sums to 1 over the levels: for 1 and 3 channels, 2, 17
  and 256 levels, random parameters and extreme ones (means far outside
  [-1, 1], scales at the clamp and huge, saturated coefficients and logits);
* it agrees with the textbook formula (differences of sigmoids) where that is
  accurate, and stays finite where that one underflows;
* gradients are finite at the edge levels and in the tails;
* samples follow the probabilities (chi-square).

And the 256-way softmax for whole-pixel networks (PixelCNN++'s ablation,
:class:`SubpixelSoftmax`): a whole RGB pixel sums to 1, samples follow it, and its
linear tilt can centre G on R.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from pixelzoo.likelihoods import DiscretizedLogisticMixture, SubpixelSoftmax

K = 4


def parameters(lik, n=12, seed=0, dtype=torch.float64):
    """Random parameter vectors ``[n, P]``, the last ones extreme."""
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, lik.num_params, generator=g, dtype=dtype) * 2
    c, k = lik.channels, lik.components
    means = slice(k, k + c * k)
    scales = slice(k + c * k, k + 2 * c * k)
    p[-1, means] = 60.0  # every component far above the top level
    p[-2, means] = -60.0  # far below level 0
    p[-3, scales] = -30.0  # clamped at the minimum scale (-7)
    p[-4, scales] = 25.0  # scale e^25: bins far narrower than the scale
    p[-5] *= 40  # saturated logits and coefficients
    p[-6, means] = torch.linspace(-1, 1, c * k, dtype=dtype)
    p[-6, scales] = -6.9  # sharp peaks between levels
    return p


def log_probs(lik, params, x):
    """``params [n, P]`` with images of one pixel ``x [m, C]`` -> ``[n, m, C]``."""
    n, m = len(params), len(x)
    pp = params[:, None].expand(n, m, -1).reshape(n * m, -1)[:, :, None, None]
    xx = x.repeat(n, 1)[:, :, None, None]
    return lik.log_prob(pp, xx)[:, :, 0, 0].view(n, m, -1)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("levels", [2, 17, 256])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 2e-5)])
def test_every_conditional_sums_to_one(channels, levels, dtype, tol):
    """For each channel c and a random earlier context, sum over x_c of p(x_c | x_<c) is 1."""
    lik = DiscretizedLogisticMixture(channels, levels, K)
    params = parameters(lik, dtype=dtype)
    g = torch.Generator().manual_seed(1)
    for c in range(channels):
        context = torch.randint(0, levels, (channels,), generator=g)
        x = context.repeat(levels, 1)
        x[:, c] = torch.arange(levels)
        lp = log_probs(lik, params, x)[:, :, c]
        assert torch.isfinite(lp).all()
        total = torch.logsumexp(lp.double(), 1).exp()
        assert (total - 1).abs().max() < tol, f"channel {c}: {total.tolist()}"


@pytest.mark.parametrize("levels", [2, 5])
def test_whole_rgb_pixel_sums_to_one_by_enumeration(levels):
    lik = DiscretizedLogisticMixture(3, levels, K)
    params = parameters(lik)
    x = torch.tensor(list(itertools.product(range(levels), repeat=3)))
    lp = log_probs(lik, params, x).sum(-1)  # (n, levels^3): log p(pixel)
    total = torch.logsumexp(lp, 1).exp()
    assert (total - 1).abs().max() < 1e-9


def test_matches_the_textbook_formula():
    """sum_k pi_k prod_c [sigmoid((x+d-mu)/s) - sigmoid((x-d-mu)/s)], edges to +-inf, in float64."""
    lik = DiscretizedLogisticMixture(3, 8, K)
    params = torch.randn(5, lik.num_params, dtype=torch.float64)
    x = torch.randint(0, 8, (5, 3))
    ours = lik.log_prob(params[:, :, None, None], x[:, :, None, None])[:, :, 0, 0].sum(1)
    logits, means, log_scales, coeffs = lik.split(params)
    xu = x.double() * 2 / 7 - 1
    mu = means.clone()
    mu[:, 1] += coeffs[:, 0] * xu[:, :1]
    mu[:, 2] += coeffs[:, 1] * xu[:, :1] + coeffs[:, 2] * xu[:, 1:2]
    s = log_scales.exp()
    upper = torch.where(x[:, :, None] == 7, 1.0, torch.sigmoid((xu[:, :, None] + 1 / 7 - mu) / s))
    lower = torch.where(x[:, :, None] == 0, 0.0, torch.sigmoid((xu[:, :, None] - 1 / 7 - mu) / s))
    mass = (upper - lower).prod(1)  # (n, K)
    textbook = (torch.softmax(logits, 1) * mass).sum(1).log()
    torch.testing.assert_close(ours, textbook, rtol=1e-10, atol=1e-10)


def test_tails_stay_finite_where_differences_of_cdfs_underflow():
    """A bin 40 scales from the mean: its mass is ~e^-40, not 0."""
    lik = DiscretizedLogisticMixture(1, 256, 1)
    params = torch.tensor([[0.0, -0.9, math.log(0.01)]])  # mean -0.9, scale 0.01
    x = torch.tensor([[200]])
    lp = lik.log_prob(params[:, :, None, None], x[:, :, None, None]).item()
    centre = 200 * 2 / 255 - 1
    expected = -(centre - (-0.9)) / 0.01 + math.log(2 / 255 / 0.01)  # log(pdf * width), far tail
    assert math.isfinite(lp) and abs(lp - expected) < 0.05


@pytest.mark.parametrize("channels", [1, 3])
def test_gradients_are_finite_at_the_edges_and_in_the_tails(channels):
    lik = DiscretizedLogisticMixture(channels, 256, K)
    params = parameters(lik, dtype=torch.float32).requires_grad_(True)
    for value in (0, 1, 128, 254, 255):
        x = torch.full((len(params), channels), value)
        lp = lik.log_prob(params[:, :, None, None], x[:, :, None, None])
        (grad,) = torch.autograd.grad(lp.sum(), params)
        assert torch.isfinite(lp).all() and torch.isfinite(grad).all(), f"level {value}"


def test_samples_follow_the_probabilities():
    lik = DiscretizedLogisticMixture(3, 3, 3)
    params = torch.randn(1, lik.num_params, generator=torch.Generator().manual_seed(4)) * 2
    n = 40000
    u = torch.rand(n, lik.uniforms_per_pixel, generator=torch.Generator().manual_seed(5))
    x = lik.sample_pixel(params.expand(n, -1), u)  # (n, 3)
    assert x.shape == (n, 3) and x.dtype == torch.long
    every = torch.tensor(list(itertools.product(range(3), repeat=3)))
    p = log_probs(lik, params.double(), every).sum(-1)[0].exp()
    codes = (x * torch.tensor([9, 3, 1])).sum(1)
    freq = torch.bincount(codes, minlength=27).double() / n
    assert p.max() > 2 / 27, "too close to uniform to test anything"
    chi2 = (n * (freq - p) ** 2 / p).sum().item()
    assert chi2 < 26 + 8 * math.sqrt(52) + 10, f"chi2={chi2:.1f} with 26 dof"


def test_parameter_count_is_the_papers():
    assert DiscretizedLogisticMixture(3, 256, 10).num_params == 100  # §2.2: 10 * (1 + 6 + 3)
    assert DiscretizedLogisticMixture(1, 256, 10).num_params == 30


@pytest.mark.parametrize("levels", [2, 5])
def test_subpixel_softmax_pixel_sums_to_one_and_samples_follow_it(levels):
    lik = SubpixelSoftmax(3, levels)
    assert lik.num_params == 6 * levels and lik.uniforms_per_pixel == 3
    params = torch.randn(1, lik.num_params, generator=torch.Generator().manual_seed(2)) * 3
    every = torch.tensor(list(itertools.product(range(levels), repeat=3)))
    p = log_probs(lik, params.double(), every).sum(-1)[0].exp()
    assert abs(p.sum().item() - 1) < 1e-9
    n = 40000
    u = torch.rand(n, 3, generator=torch.Generator().manual_seed(3))
    x = lik.sample_pixel(params.expand(n, -1), u)
    codes = (x * torch.tensor([levels**2, levels, 1])).sum(1)
    freq = torch.bincount(codes, minlength=len(every)).double() / n
    dof = len(every) - 1
    chi2 = (n * (freq - p) ** 2 / p).sum().item()
    assert chi2 < dof + 8 * math.sqrt(2 * dof) + 10, f"chi2={chi2:.1f} with {dof} dof"


def test_subpixel_softmax_tilt_centres_green_on_red():
    """a(v) = -t v^2 / 2, b(v) = t v make G's logits peak at G = R, whatever R is."""
    levels, t = 256, 400.0
    lik = SubpixelSoftmax(3, levels)
    v = torch.linspace(-1, 1, levels, dtype=torch.float64)
    params = torch.zeros(levels, lik.num_params, dtype=torch.float64)
    params[:, levels : 2 * levels] = -t * v**2 / 2  # G's base logits
    params[:, 3 * levels : 4 * levels] = t * v  # the slope of G on R
    x = torch.zeros(levels, 3, dtype=torch.long)
    x[:, 0] = torch.arange(levels)  # R = 0 .. 255; G and B are not read
    g_logits = lik.channel_logits(params, x, 1)  # (levels, levels): one row per value of R
    assert torch.equal(g_logits.argmax(1), torch.arange(levels))
