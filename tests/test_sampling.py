"""Cached sampling computes what the full network computes, so it draws the same images.

For every autoregressive model (colour and binary, conditional and not): the
cached stepper's parameters at each pixel equal the full forward pass's, and
cached and naive sampling give identical images and completions from the same
generator. Models run in float64 here, where the two agree to ~1e-15 and no
uniform can fall between their two answers; the float32 agreement is checked
with a tolerance.
"""

from __future__ import annotations

import pytest
import torch

from pixelzoo import models
from pixelzoo.errors import InputError
from pixelzoo.nn import HorizontalStackConv, MaskedConv2d
from pixelzoo.sampling.steppers import MaskedConvBuffer
from tests.helpers import cond_for

CACHED = [
    ("pixelcnn", "pixelcnn", {}),
    ("gated_pixelcnn", "gated_pixelcnn", {}),
    ("gated_pixelcnn-class", "gated_pixelcnn", dict(num_classes=3)),
    ("gated_pixelcnn-vector", "gated_pixelcnn", dict(cond_shape=(4,))),
    ("gated_pixelcnn-spatial", "gated_pixelcnn", dict(cond_shape=(2, 2, 3))),
    ("pixelcnn_pp", "pixelcnn_pp", {}),
    ("pixelcnn_pp-class", "pixelcnn_pp", dict(num_classes=3)),
    ("pixelcnn_pp-2blocks-2res", "pixelcnn_pp", dict(blocks=2, resolutions=2)),
    ("pixelcnn_pp-0blocks", "pixelcnn_pp", dict(blocks=0)),
    ("pixelcnn_pp-softmax", "pixelcnn_pp", dict(likelihood="softmax")),
    ("pixelcnn_pp-noshortcuts-class", "pixelcnn_pp", dict(shortcuts=False, num_classes=3)),
    ("row_lstm", "row_lstm", {}),
    ("row_lstm-k5-noskip", "row_lstm", dict(kernel=5, skip=False)),
    ("diagonal_bilstm", "diagonal_bilstm", {}),
    ("diagonal_bilstm-3layers-noskip", "diagonal_bilstm", dict(layers=3, skip=False)),
]
IDS = [c[0] for c in CACHED]
# Colour with several levels, binary, and odd sizes (the down-sampled maps round up).
SHAPES = [((3, 6, 5), 4), ((1, 7, 9), 2), ((1, 5, 4), 256)]


def build(variant, shape, levels, dtype=torch.float64):
    _, name, extra = next(c for c in CACHED if c[0] == variant)
    torch.manual_seed(0)
    model = models.build(name, shape, levels, "tiny", **extra).to(dtype).eval()
    with torch.no_grad():  # sharpen the conditionals, as in test_models
        for p in model.parameters():
            p.mul_(3.0)
    return model


def test_every_autoregressive_model_has_a_cached_sampler():
    for name in ("pixelcnn", "gated_pixelcnn", "pixelcnn_pp", "row_lstm", "diagonal_bilstm"):
        model = models.build(name, (1, 4, 4), 2, "tiny")
        assert model.has_cached_sampler()
        assert model.cached_stepper(torch.zeros(1, 1, 4, 4, dtype=torch.long), None) is not None
    # Which models have one is derived from the models themselves, not a list.
    cached = {
        n
        for n in models.names()
        if getattr(models.get(n).cls, "has_cached_sampler", lambda: False)()
    }
    assert cached == {
        "pixelcnn", "gated_pixelcnn", "pixelcnn_pp", "pixelcnn_ae", "row_lstm", "diagonal_bilstm"
    }  # fmt: skip


@pytest.mark.parametrize("variant", IDS)
@pytest.mark.parametrize("shape,levels", SHAPES)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_cached_parameters_equal_the_forward_pass(variant, shape, levels, dtype, tol):
    """Stepping through a whole given image, the cached parameters at (i, j) are the network's."""
    model = build(variant, shape, levels, dtype)
    x = torch.randint(0, levels, (3, *shape), generator=torch.Generator().manual_seed(1))
    cond = cond_for(model, 3)
    if isinstance(cond, torch.Tensor) and cond.is_floating_point():
        cond = cond.to(dtype)
    with torch.no_grad():
        full = model(x, cond)
        stepper = model.cached_stepper(x, cond)
        worst = 0.0
        for i in range(shape[1]):
            stepper.begin_row(i)
            for j in range(shape[2]):
                params = stepper.step(x, i, j, need=True)
                worst = max(worst, (params - full[:, :, i, j]).abs().max().item())
                stepper.commit(x, i, j)
    assert worst < tol * max(1.0, full.abs().max().item()), f"{variant}: max difference {worst}"


@pytest.mark.parametrize("variant", IDS)
@pytest.mark.parametrize("shape,levels", SHAPES)
def test_cached_and_naive_samples_are_identical(variant, shape, levels):
    model = build(variant, shape, levels)
    cond = cond_for(model, 6)
    if isinstance(cond, torch.Tensor) and cond.is_floating_point():
        cond = cond.double()
    naive = model.sample(6, cond, torch.Generator().manual_seed(3), sampler="naive")
    cached = model.sample(6, cond, torch.Generator().manual_seed(3), sampler="cached")
    assert torch.equal(naive, cached)
    assert naive.float().std() > 0, "degenerate samples test nothing"
    # "auto" is the cached sampler for these models.
    assert torch.equal(model.sample(6, cond, torch.Generator().manual_seed(3)), cached)


@pytest.mark.parametrize("variant", ["pixelcnn", "gated_pixelcnn-spatial", "pixelcnn_pp-class"])
def test_cached_and_naive_completions_are_identical(variant):
    shape, levels = (3, 6, 5), 4
    model = build(variant, shape, levels)
    x = torch.randint(0, levels, (4, *shape), generator=torch.Generator().manual_seed(2))
    cond = cond_for(model, 4)
    if isinstance(cond, torch.Tensor) and cond.is_floating_point():
        cond = cond.double()
    naive = model.complete(x, 3, cond, torch.Generator().manual_seed(5), sampler="naive")
    cached = model.complete(x, 3, cond, torch.Generator().manual_seed(5), sampler="cached")
    assert torch.equal(naive, cached) and torch.equal(cached[:, :, :3], x[:, :, :3])


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaskedConv2d(3, 6, 7, "A", 3),  # PixelCNN's first layer, colour
        lambda: MaskedConv2d(1, 4, 7, "A", 1),  # one channel: a zero centre
        lambda: MaskedConv2d(6, 6, 3, "B", 3),
        lambda: MaskedConv2d(4, 8, (1, 3), "B", 1, chunks=4),  # the Row LSTM's input-to-state
        lambda: HorizontalStackConv(6, 8, 5, "B", 3, chunks=2),  # the Gated horizontal stack
    ],
    ids=["7x7-A-rgb", "7x7-A-grey", "3x3-B-rgb", "1x3-B", "horizontal-1x3"],
)
def test_a_masked_conv_buffer_reads_the_convolution_at_every_position(make):
    """Rows above once per image row, the current row's positions at the step: the
    convolution's own output at each (i, j), each value written as it becomes known."""
    torch.manual_seed(0)
    conv = make().double()
    with torch.no_grad():
        conv.bias.normal_()
        maps = torch.randn(2, conv.in_channels, 5, 6, dtype=torch.float64)
        full = conv(maps)
        buf = MaskedConvBuffer(maps, 2, conv.in_channels, (5, 6), conv)
        for i in range(5):
            buf.begin_row(i)
            for j in range(6):
                buf.cell(i, j).copy_(maps[:, :, i, j])
                torch.testing.assert_close(buf.product(i, j), full[:, :, i, j], rtol=0, atol=1e-12)


def test_autoencoder_decodes_codes_with_the_cached_sampler():
    torch.manual_seed(0)
    model = models.build("pixelcnn_ae", (1, 6, 6), 2, "tiny").double().eval()
    codes = torch.randn(5, model.config.code_dim, dtype=torch.float64)
    naive = model.sample(5, codes, torch.Generator().manual_seed(0), sampler="naive")
    cached = model.sample(5, codes, torch.Generator().manual_seed(0), sampler="cached")
    assert torch.equal(naive, cached)


def test_sampler_choice_errors_are_one_sentence():
    # Every registered autoregressive model has a cached sampler now: a subclass without one.
    class Uncached(models.get("row_lstm").cls):
        cached_stepper = models.AutoregressiveModel.cached_stepper

    model = Uncached((1, 4, 4), 2, models.resolve_config("row_lstm", "tiny"))
    assert not model.has_cached_sampler()
    with pytest.raises(InputError, match=r"row_lstm has no cached sampler .*sampler='naive'"):
        model.sample(2, sampler="cached")
    assert model.sample(2, sampler="auto").shape == (2, 1, 4, 4)  # falls back to naive
    with pytest.raises(InputError, match=r"unknown sampler 'fast'; valid samplers: auto, cached"):
        model.sample(2, sampler="fast")


@pytest.mark.parametrize("variant", ["pixelcnn_pp-class", "gated_pixelcnn-vector"])
def test_samples_are_drawn_in_batches_that_continue_one_generator(variant):
    """Many samples are drawn a batch at a time (bounded memory): the first batch is the
    images of sampling one batch, each image keeps its own cond, and the seed decides all."""
    from pixelzoo.sampling import sample

    model = build(variant, (3, 4, 3), 4)
    cond = cond_for(model, 5)
    if isinstance(cond, torch.Tensor) and cond.is_floating_point():
        cond = cond.double()
    batched = sample(model, 5, cond, torch.Generator().manual_seed(1), batch_size=2)
    assert batched.shape == (5, 3, 4, 3)
    first = sample(model, 2, cond[:2], torch.Generator().manual_seed(1), batch_size=2)
    assert torch.equal(batched[:2], first)
    again = sample(model, 5, cond, torch.Generator().manual_seed(1), batch_size=2)
    assert torch.equal(batched, again)
    # The third and later images come from the generator after the earlier batches.
    g = torch.Generator().manual_seed(1)
    sample(model, 2, cond[:2], g, batch_size=2)
    second = sample(model, 2, cond[2:4], g, batch_size=2)
    assert torch.equal(batched[2:4], second)


def test_cached_sampling_and_ais_run_on_one_thread_and_restore_the_count(monkeypatch):
    """Loops of small operations take one thread (utils/threads.py: two threads collapse
    3-5x when the other core is busy); the caller's thread count is restored after."""
    from pixelzoo.evaluation.ais import AISConfig, ais_log_prob, decoder_of

    def spy_on(cls, name, seen):
        original = getattr(cls, name)

        def spy(self, *args, **kw):
            seen.append(torch.get_num_threads())
            return original(self, *args, **kw)

        monkeypatch.setattr(cls, name, spy)

    torch.set_num_threads(2)
    model = models.build("pixelcnn", (1, 4, 4), 2, "tiny").eval()
    stepped = []
    spy_on(type(model.cached_stepper(torch.zeros(1, 1, 4, 4, dtype=torch.long))), "step", stepped)
    model.sample(2, generator=torch.Generator().manual_seed(0))
    assert stepped and set(stepped) == {1} and torch.get_num_threads() == 2
    # The naive sampler's whole-network passes keep every thread.
    naive = []
    model.register_forward_pre_hook(lambda *_: naive.append(torch.get_num_threads()))
    model.sample(1, generator=torch.Generator().manual_seed(0), sampler="naive")
    assert naive and set(naive) == {2}
    decoder = decoder_of(models.build("dcgan", (1, 8, 8), 17).eval())
    annealed = []
    spy_on(type(decoder), "log_likelihood", annealed)
    ais_log_prob(
        decoder, torch.randint(0, 17, (2, 1, 8, 8)), AISConfig(steps=3, chains=2, leapfrog=2)
    )
    assert annealed and set(annealed) == {1} and torch.get_num_threads() == 2
