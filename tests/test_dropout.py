"""pixelzoo.nn.Dropout: nn.Dropout's function from a quarter of its random draws."""

from __future__ import annotations

import pytest
import torch

from pixelzoo.errors import ConfigError
from pixelzoo.nn import Dropout


def kept_statistics(out: torch.Tensor, x: torch.Tensor, p: float):
    keep = out != 0
    # Every element is either dropped or scaled as nn.Dropout scales it.
    torch.testing.assert_close(out[keep], x[keep] / (1 - p), rtol=1e-6, atol=0)
    flat = keep.flatten().float()
    fraction = flat.mean().item()
    # Neighbours share a 64-bit draw (four 16-bit uniforms each): they must not correlate.
    a, b = flat[:-1] - fraction, flat[1:] - fraction
    corr = (a * b).mean().item() / max(fraction * (1 - fraction), 1e-12)
    return fraction, corr


@pytest.mark.parametrize("p", [0.5, 0.1, 0.9])
@pytest.mark.parametrize("compiled", [False, True])
def test_dropout_keeps_one_minus_p_of_the_elements_independently(p, compiled):
    torch.manual_seed(0)
    x = torch.rand(8, 32, 63, 65) + 0.5  # odd sizes: the last draw is only partly used
    drop = Dropout(p).train()
    if compiled:
        torch._dynamo.reset()
        out = torch.compile(drop)(x)  # TorchInductor draws its own random integers
    else:
        out = drop(x)
    assert out.shape == x.shape
    fraction, corr = kept_statistics(out, x, p)
    sd = (p * (1 - p) / x.numel()) ** 0.5
    assert abs(fraction - (1 - p)) < 5 * sd, (fraction, 1 - p)
    assert abs(corr) < 5 / x.numel() ** 0.5, corr
    # Unbiased: the output's mean is the input's, within its sampling error.
    sd_mean = ((x**2).mean().item() * p / (1 - p) / x.numel()) ** 0.5
    assert abs(out.mean().item() - x.mean().item()) < 5 * sd_mean


def test_dropout_is_the_identity_when_evaluating_or_at_zero_and_seeded_when_training():
    x = torch.randn(4, 6, 5, 5)
    assert Dropout(0.5).eval()(x) is x
    assert Dropout(0.0).train()(x) is x
    drop = Dropout(0.5).train()
    torch.manual_seed(3)
    a = drop(x)
    torch.manual_seed(3)
    assert torch.equal(a, drop(x))  # the global generator's stream, as nn.Dropout's
    assert not torch.equal(a, drop(x))
    drop.p = 0.9  # a probability set after construction is the one used
    kept = (drop(torch.ones(100_000)) != 0).float().mean().item()
    assert abs(kept - 0.1) < 0.005


def test_dropout_gradient_is_its_mask_over_one_minus_p():
    x = torch.randn(3, 5, 7, requires_grad=True)
    out = Dropout(0.25).train()(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    torch.testing.assert_close(grad, (out != 0).float() / 0.75)


def test_a_dropout_probability_outside_0_1_is_one_clear_error():
    for p in (-0.1, 1.0, 1.5):
        with pytest.raises(ConfigError, match=r"dropout must be in \[0, 1\)"):
            Dropout(p)
