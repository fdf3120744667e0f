"""Properties that make an autoregressive model correct, for every registered model.

* causality: changing sub-pixel j never changes the log-probability terms of
  sub-pixels before j (raster order, R -> G -> B), and does change later ones;
* exact normalization: probabilities of every image of a tiny space sum to 1;
* samples agree with the likelihood: empirical frequencies match exp(log_prob);
* every bad input gets a clear error.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from pixelzoo import models
from pixelzoo.errors import ConfigError, InputError
from pixelzoo.nn import MaskedConv2d, causal_mask
from tests.helpers import cond_for

AR_MODELS = [n for n in models.names() if issubclass(models.get(n).cls, models.AutoregressiveModel)]
# Every model, plus the conditional variants: (test id, model name, extra settings).
VARIANTS = [(n, n, {}) for n in AR_MODELS] + [
    ("gated_pixelcnn-class", "gated_pixelcnn", dict(num_classes=3)),
    ("gated_pixelcnn-vector", "gated_pixelcnn", dict(cond_shape=(4,))),
    ("gated_pixelcnn-spatial", "gated_pixelcnn", dict(cond_shape=(2, 2, 3))),
    ("pixelcnn_pp-class", "pixelcnn_pp", dict(num_classes=3)),
    # The paper's ablations (§3): a softmax over sub-pixels, R -> G -> B; no shortcuts.
    ("pixelcnn_pp-softmax", "pixelcnn_pp", dict(likelihood="softmax")),
    ("pixelcnn_pp-noshortcuts", "pixelcnn_pp", dict(shortcuts=False, resolutions=2)),
]
IDS = [v[0] for v in VARIANTS]
# Without the U-Net shortcuts, PixelCNN++ sees the image only through its lowest
# resolution (with 3 resolutions, a 4x4 image's is one position that sees nothing,
# hence 2 here): causal, but a sub-pixel need not influence every later pixel's term.
PARTIAL_VIEW = {"pixelcnn_pp-noshortcuts"}


# The no-shortcut model sees the image only through 2x2 blocks: at seed 0 its tiny
# model is too close to uniform on 2x2 binary images to test sampling against.
SEEDS = {"pixelcnn_pp-noshortcuts": 2}


def tiny(variant, shape, levels: int, seed: int | None = None, zero_bias: bool = False):
    """The tiny model of ``variant`` (a model name or an entry of VARIANTS)."""
    key, name, extra = (
        next(v for v in VARIANTS if v[0] == variant) if isinstance(variant, str) else variant
    )
    torch.manual_seed(SEEDS.get(key, 0) if seed is None else seed)
    model = models.build(name, shape, levels, "tiny", **extra).eval()  # small enough to enumerate
    # Random init makes near-uniform conditionals; sharpen them so that tests of
    # normalization and sampling probe a non-trivial distribution.
    with torch.no_grad():
        for n, p in model.named_parameters():
            # The output layers' biases stay: they feed no ReLU, and at the first
            # pixel they are all a whole-pixel likelihood's coefficients (R -> G) have.
            p.mul_(0.0 if zero_bias and n.endswith("bias") and "output" not in n else 3.0)
    return model


def test_every_registered_model_has_a_tiny_preset_that_builds():
    for name in models.names():
        assert "tiny" in models.get(name).presets
        model = models.build(name, (1, 8, 8), 2, "tiny")
        assert sum(p.numel() for p in model.parameters()) < 100_000, name


def order(shape):
    """Sub-pixels (c, i, j) in the model's order: raster scan, then colour."""
    c, h, w = shape
    return [(k, i, j) for i in range(h) for j in range(w) for k in range(c)]


@pytest.mark.parametrize("variant", IDS)
@pytest.mark.parametrize("shape,levels", [((1, 4, 4), 2), ((3, 4, 4), 4), ((1, 3, 5), 17)])
def test_causality_by_perturbation(variant, shape, levels):
    """Changing sub-pixel t changes no earlier term and some later one.

    Sixteen random images are perturbed at once: a term must stay unchanged in
    all of them, while "sees" needs only one (with four, one seed of the Gated
    PixelCNN had every B-group ReLU off at one pixel for all of them). Biases are zeroed: with random biases
    every ReLU of one colour group can be off at the corner pixel for all inputs
    (it sees only two sub-pixels there), hiding a connection the architecture has.
    Conditional models get a random condition per image, held fixed.
    """
    model = tiny(variant, shape, levels, zero_bias=True)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (16, *shape), generator=g)
    cond = cond_for(model, 16)
    base = model.log_prob(x, cond, reduction="none")
    seq = order(shape)
    seen = 0
    with torch.no_grad():
        for pos, (c, i, j) in enumerate(seq):
            y = x.clone()
            y[:, c, i, j] = (
                y[:, c, i, j] + 1 + torch.randint(0, levels - 1, (16,), generator=g)
            ) % levels
            diff = (model.log_prob(y, cond, reduction="none") - base).abs() > 1e-6
            changed = diff.any(0)
            before = [changed[s] for s in seq[:pos]]
            after = [changed[s] for s in seq[pos + 1 :]]
            assert not any(before), f"{variant}: sub-pixel {(c, i, j)} leaks into an earlier term"
            seen += sum(bool(a) for a in after)
            if after and variant not in PARTIAL_VIEW:
                assert any(after), f"{variant}: sub-pixel {(c, i, j)} influences nothing after it"
            # The very next sub-pixel of the same pixel must see it (R -> G -> B).
            if c + 1 < shape[0]:
                assert changed[c + 1, i, j], f"{variant}: channel {c + 1} does not see channel {c}"
    assert seen > 0, f"{variant}: no term depends on the image at all"


@pytest.mark.parametrize("variant", IDS)
def test_causality_by_gradient(variant):
    """d(log p of sub-pixel t)/d(input) is zero on t and every later sub-pixel."""
    shape, levels = (3, 3, 3), 4
    model = tiny(variant, shape, levels)
    x = torch.randint(0, levels, (1, *shape))
    seq = order(shape)
    x_in = model.embed(x).requires_grad_(True)
    params = model.network(x_in, cond_for(model, 1))
    lp = model.likelihood.log_prob(params, x)[0]
    for pos, (c, i, j) in enumerate(seq):
        (grad,) = torch.autograd.grad(lp[c, i, j], x_in, retain_graph=True)
        for later in seq[pos:]:
            assert grad[(0, *later)] == 0, f"term {(c, i, j)} depends on {later}"


def all_images(shape, levels):
    dims = math.prod(shape)
    return torch.tensor(list(itertools.product(range(levels), repeat=dims))).view(-1, *shape)


@pytest.mark.parametrize("variant", IDS)
@pytest.mark.parametrize("shape,levels", [((1, 2, 3), 2), ((3, 1, 2), 4), ((1, 1, 3), 17)])
def test_exact_normalization_by_enumeration(variant, shape, levels):
    """Sum over every image of p(x | cond) is 1: for every class, or for two random conditions."""
    model = tiny(variant, shape, levels)
    xs = all_images(shape, levels)
    values = range(model.num_classes) if model.cond_kind == "class" else [0, 1]
    for value in values:
        cond = cond_for(model, len(xs), seed=value, value=value)
        with torch.no_grad():
            total = torch.logsumexp(model.log_prob(xs, cond).double(), 0).exp().item()
        assert abs(total - 1.0) < 1e-5, f"{variant}: condition {value} sums to {total}"


@pytest.mark.parametrize("variant", IDS)
def test_network_gives_one_parameter_set_per_pixel(variant):
    """[B, P, H, W] at the image's size (a smaller map would broadcast in the likelihood)."""
    model = tiny(variant, (3, 5, 6), 4)
    x = torch.randint(0, 4, (2, 3, 5, 6))
    assert model(x, cond_for(model, 2)).shape == (2, model.likelihood.num_params, 5, 6)


@pytest.mark.parametrize("variant", IDS)
def test_reduction_none_sums_to_total(variant):
    model = tiny(variant, (3, 4, 4), 4)
    x = torch.randint(0, 4, (5, 3, 4, 4))
    cond = cond_for(model, 5)
    per = model.log_prob(x, cond, reduction="none")
    assert per.shape == (5, 3, 4, 4) and (per <= 0).all()
    torch.testing.assert_close(per.flatten(1).sum(1), model.log_prob(x, cond))


@pytest.mark.parametrize("variant", IDS)
@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 2), ((2, 1, 2), 3)])
def test_samples_match_likelihood(variant, shape, levels):
    """Empirical frequencies of 20,000 samples vs exp(log_prob) of every image (one condition)."""
    model = tiny(variant, shape, levels)
    n = 20000
    x = model.sample(n, cond_for(model, n, value=1), generator=torch.Generator().manual_seed(0))
    xs = all_images(shape, levels)
    dims = math.prod(shape)
    with torch.no_grad():
        p = model.log_prob(xs, cond_for(model, len(xs), value=1)).exp().double()
    codes = (x.flatten(1) * levels ** torch.arange(dims - 1, -1, -1)).sum(1)
    freq = torch.bincount(codes, minlength=len(xs)).double() / n
    assert p.max() > 2.0 / len(xs), "the tiny model is too close to uniform to test anything"
    # Pearson chi-square with len(xs)-1 degrees of freedom: fail above the 99.99% point.
    chi2 = (n * (freq - p) ** 2 / p).sum().item()
    dof = len(xs) - 1
    assert chi2 < dof + 8.0 * math.sqrt(2 * dof) + 10, f"chi2={chi2:.1f} with {dof} dof"


@pytest.mark.parametrize("variant", IDS)
def test_sampling_is_deterministic_under_a_seed(variant):
    model = tiny(variant, (3, 3, 3), 4)
    cond = cond_for(model, 4)
    a = model.sample(4, cond, generator=torch.Generator().manual_seed(7))
    b = model.sample(4, cond, generator=torch.Generator().manual_seed(7))
    c = model.sample(4, cond, generator=torch.Generator().manual_seed(8))
    assert a.dtype == torch.long and a.shape == (4, 3, 3, 3)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert int(a.min()) >= 0 and int(a.max()) <= 3


@pytest.mark.parametrize("variant", IDS)
def test_completion_keeps_the_given_rows(variant):
    model = tiny(variant, (1, 5, 4), 2)
    x = torch.randint(0, 2, (6, 1, 5, 4))
    cond = cond_for(model, 6)
    out = model.complete(x, 2, cond, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[:, :, :2], x[:, :, :2])
    # Completion is the same loop as sampling: with every row given nothing changes.
    assert torch.equal(model.complete(x, 5, cond), x)


def test_bad_inputs_get_one_clear_sentence():
    model = tiny("pixelcnn", (1, 4, 4), 2)
    with pytest.raises(InputError, match=r"integer tensor .*got dtype torch.float32"):
        model.log_prob(torch.zeros(2, 1, 4, 4))
    with pytest.raises(InputError, match=r"shape \[B, 1, 4, 4\], got \[2, 3, 4, 4\]"):
        model.log_prob(torch.zeros(2, 3, 4, 4, dtype=torch.long))
    bad = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    bad[1, 0, 2, 3] = 5
    with pytest.raises(InputError, match=r"values must be in 0..1, found values in 0..5"):
        model.log_prob(bad)
    with pytest.raises(InputError, match="unconditional"):
        model.log_prob(torch.zeros(2, 1, 4, 4, dtype=torch.long), cond=torch.zeros(2))
    with pytest.raises(InputError, match="reduction"):
        model.log_prob(torch.zeros(2, 1, 4, 4, dtype=torch.long), reduction="mean")
    with pytest.raises(InputError, match="rows to keep"):
        model.complete(torch.zeros(2, 1, 4, 4, dtype=torch.long), rows=9)


def test_registry_errors_list_valid_choices():
    with pytest.raises(
        ConfigError, match="valid names: dcgan, diagonal_bilstm, gated_pixelcnn, pggan"
    ):
        models.build("pixelcnnn")
    with pytest.raises(ConfigError, match="no setting 'layers'; valid settings: blocks"):
        models.build("pixelcnn", layers=3)
    with pytest.raises(ConfigError, match="valid presets: default"):
        models.build("pixelcnn", preset="imagenet")
    with pytest.raises(ConfigError, match="not a valid int"):
        models.build("pixelcnn", blocks="many")
    with pytest.raises(ConfigError, match="levels"):
        models.build("pixelcnn", levels=1)
    with pytest.raises(
        ConfigError, match="'pixelcnn' cannot be conditioned; conditional models: gat"
    ):
        models.build("pixelcnn", num_classes=10)
    with pytest.raises(ConfigError, match="num_classes or cond_shape, not both"):
        models.build("gated_pixelcnn", num_classes=10, cond_shape=(3,))
    with pytest.raises(ConfigError, match=r"cond_shape must be \(D,\) for a vector or \(D, h, w\)"):
        models.build("gated_pixelcnn", cond_shape=(3, 4))
    with pytest.raises(ConfigError, match="num_classes must be at least 2"):
        models.build("gated_pixelcnn", num_classes=1)
    with pytest.raises(ConfigError, match="kernel sizes must be odd"):
        models.build("gated_pixelcnn", kernel=4)
    with pytest.raises(ConfigError, match="odd and at least 3"):
        models.build("row_lstm", kernel=2)
    with pytest.raises(ConfigError, match="at least one LSTM layer"):
        models.build("diagonal_bilstm", layers=0)
    with pytest.raises(ConfigError, match="at least the 3 colour channels"):
        models.build("diagonal_bilstm", (3, 8, 8), 256, hidden=2)


def test_bad_conditions_get_one_clear_sentence():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    vec = tiny("gated_pixelcnn-vector", (1, 4, 4), 2)
    with pytest.raises(
        InputError, match=r"conditioned on vector input: pass cond = a float tensor \[2, 4\]"
    ):
        vec.log_prob(x)
    with pytest.raises(InputError, match=r"got torch.float32 \[2, 5\]"):
        vec.log_prob(x, torch.zeros(2, 5))
    with pytest.raises(InputError, match="NaN or inf"):
        vec.log_prob(x, torch.full((2, 4), float("nan")))
    spatial = tiny("gated_pixelcnn-spatial", (1, 4, 4), 2)
    with pytest.raises(InputError, match=r"a float tensor \[2, 2, 2, 3\], got torch.int64"):
        spatial.log_prob(x, torch.zeros(2, 2, 2, 3, dtype=torch.long))


def test_spatial_condition_is_location_dependent():
    """m(h) reaches the image size and different maps give different likelihoods."""
    model = tiny("gated_pixelcnn-spatial", (1, 6, 7), 2)
    h = torch.randn(3, 2, 2, 3)
    assert model.cond_input(h).shape == (3, model.config.cond_maps, 6, 7)
    x = torch.randint(0, 2, (3, 1, 6, 7))
    with torch.no_grad():
        a, b = model.log_prob(x, h), model.log_prob(x, h.flip(-1))
    assert (a - b).abs().min() > 1e-4


def test_presets_and_overrides_and_spec_round_trip():
    m = models.build("pixelcnn", (3, 8, 8), 256, preset="cifar10", blocks="2")
    assert m.config.hidden == 128 and m.config.blocks == 2 and len(m.blocks) == 2
    spec = m.spec()
    again = models.build(spec["name"], spec["image_shape"], spec["levels"], **spec["config"])
    assert again.spec() == spec
    # A conditional model's spec survives JSON (cond_shape becomes a list there).
    cond = models.build("gated_pixelcnn", (1, 8, 8), 2, cond_shape=(4, 2, 2))
    spec = json.loads(json.dumps(cond.spec()))
    again = models.build(spec["name"], spec["image_shape"], spec["levels"], **spec["config"])
    assert again.cond_shape == (4, 2, 2) and again.cond_kind == "spatial"


def test_mask_structure():
    """Mask A/B for 3 colour groups on a 3x3 kernel, checked entry by entry."""
    m = causal_mask(3, 3, (3, 3), "A", groups=3)
    assert m[:, :, 0].eq(1).all() and m[:, :, 2].eq(0).all()
    assert m[:, :, 1, 0].eq(1).all() and m[:, :, 1, 2].eq(0).all()
    assert torch.equal(m[:, :, 1, 1], torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0]]).float())
    b = causal_mask(6, 3, (1, 1), "B", groups=3)
    assert torch.equal(
        b[:, :, 0, 0], torch.tensor([[1, 0, 0]] * 2 + [[1, 1, 0]] * 2 + [[1, 1, 1]] * 2).float()
    )


def test_masked_weights_get_zero_gradient_and_are_never_rewritten():
    conv = MaskedConv2d(2, 4, 3, "A", groups=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)  # even if someone fills the hidden entries ...
    out = conv(torch.randn(1, 2, 5, 5))
    out.sum().backward()
    assert (conv.weight.grad * (1 - conv.mask)).abs().sum() == 0  # ... they get no gradient
    assert conv.weight.eq(1.0).all()  # forward did not write into the parameter


def test_chunked_mask_groups_every_gate_alike():
    """LSTM gates (o, f, i, g) stacked along the channels: unit k of each gate is in one group."""
    mask = causal_mask(4 * 6, 3, (1, 1), "B", groups=3, chunks=4)[:, :, 0, 0]
    per_gate = mask.view(4, 6, 3)
    assert all(torch.equal(per_gate[0], per_gate[g]) for g in range(4))
    # Units 0-1 see R, units 2-3 see R and G, units 4-5 see all three.
    assert per_gate[0].sum(1).tolist() == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="do not split into 4 chunks"):
        causal_mask(10, 3, (1, 1), "B", groups=3, chunks=4)
