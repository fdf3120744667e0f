"""Lossless compression with a model's likelihood: exact round trips, code length = NLL, errors.

Every autoregressive family (binary, grey, colour, class-conditional; the mixture and
both softmaxes; cached steppers and the naive one) decodes back to the same pixels, for
ordinary, extreme and pure-noise images; the file is the model's NLL in bits plus the
header and the coder's flush; a file is refused in one sentence when it cannot be decoded.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from pixelzoo import codec, models
from pixelzoo.data.images import load_images, save_png_folder
from pixelzoo.errors import InputError
from tests.helpers import cli, small_cfg

# (id, model, shape, levels, settings): one of each likelihood and stepper.
CASES = [
    ("pixelcnn-binary", "pixelcnn", (1, 5, 4), 2, {}),
    ("pixelcnn-rgb", "pixelcnn", (3, 4, 3), 4, {}),
    ("gated-class", "gated_pixelcnn", (1, 4, 4), 16, dict(num_classes=3)),
    ("pixelcnn_pp-rgb", "pixelcnn_pp", (3, 4, 3), 256, {}),
    ("pixelcnn_pp-softmax-class", "pixelcnn_pp", (3, 3, 3), 8, dict(likelihood="softmax", num_classes=2)),
    ("row_lstm", "row_lstm", (1, 4, 4), 2, {}),  # no cached stepper: the naive one
    ("diagonal_bilstm-rgb", "diagonal_bilstm", (3, 3, 3), 4, {}),
]  # fmt: skip
IDS = [c[0] for c in CASES]
# Beyond the code: the header and at most two 32-bit words of the range coder's flush.
CONSTANT_BITS = 8 * codec.HEADER.size + 64


def build(case_id):
    _, name, shape, levels, extra = next(c for c in CASES if c[0] == case_id)
    torch.manual_seed(0)
    model = models.build(name, shape, levels, "tiny", **extra).eval()
    with torch.no_grad():  # sharper conditionals: some levels far likelier than others
        for p in model.parameters():
            p.mul_(3.0)
    return model


def labels_for(model, n):
    return torch.arange(n) % model.num_classes if model.cond_kind == "class" else None


def round_trip(model, x, cond=None, **kw):
    encoded = codec.encode(model, x, cond, **kw)
    y, labels = codec.decode(model, encoded.data)
    assert torch.equal(y, x.long())
    assert (labels is None) == (cond is None)
    if cond is not None:
        assert torch.equal(labels, cond)
    return encoded


@pytest.mark.parametrize("case_id", IDS)
def test_round_trip_is_exact_for_every_autoregressive_model(case_id):
    model = build(case_id)
    levels, shape = model.levels, model.image_shape
    g = torch.Generator().manual_seed(1)
    typical = model.sample(5, labels_for(model, 5), generator=g)  # what the model expects
    noise = torch.randint(0, levels, (4, *shape), generator=g)  # what it does not
    extremes = torch.stack([torch.zeros(shape), torch.full(shape, levels - 1)]).long()
    for x in (typical, noise, extremes, noise[:1]):
        encoded = round_trip(model, x, labels_for(model, len(x)), batch=3)  # batches of 3, 1
        with torch.no_grad():
            nll = -float(model.log_prob(x, labels_for(model, len(x))).sum())
        nll_bits = nll / math.log(2)
        label_bits = len(x) * math.log2(model.num_classes) if model.conditional else 0.0
        # The coder's tables are the model's likelihood (the stepper's arithmetic, to rounding).
        assert encoded.ideal_bits == pytest.approx(nll_bits + label_bits, rel=1e-4, abs=1e-3)


def test_the_file_is_the_nll_plus_a_constant_and_shrinks_with_it(tmp_path):
    # On trained models (the digits, 17 levels): bits <= NLL bits x 1.01 + header and flush,
    # and the better-trained model gives the shorter file.
    from pixelzoo.runs import Run
    from pixelzoo.training import train

    sizes = {}
    for steps in (2, 60):
        run = tmp_path / f"run{steps}"
        train(small_cfg(steps=steps, ckpt_every=steps), run, progress=False)
        r = Run(run)
        model = r.load_model("last")
        x, _ = r.load_split("test").get_batch(torch.arange(120))
        encoded = codec.encode(model, x)
        with torch.no_grad():
            nll_bits = -float(model.log_prob(x).sum()) / math.log(2)
        assert nll_bits <= encoded.bits <= nll_bits * 1.01 + CONSTANT_BITS
        sizes[steps] = (encoded.bits, nll_bits)
    assert sizes[60][1] < sizes[2][1] and sizes[60][0] < sizes[2][0]


def test_a_file_that_cannot_be_decoded_is_one_sentence():
    model = build("pixelcnn-binary")
    x = torch.randint(0, 2, (3, 1, 5, 4), generator=torch.Generator().manual_seed(0))
    data = codec.encode(model, x).data
    other = build("pixelcnn-binary")
    with torch.no_grad():
        next(other.parameters()).add_(1e-3)
    with pytest.raises(codec.CodecError, match="another model"):
        codec.decode(other, data)
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.decode(model, data[:-4])
    with pytest.raises(codec.CodecError, match="truncated"):
        codec.decode(model, data[:10])
    with pytest.raises(codec.CodecError, match="not a pixelzoo compressed file"):
        codec.decode(model, b"\x89PNG" + data[4:])
    with pytest.raises(codec.CodecError, match="corrupt"):
        codec.decode(model, data + b"\x00\x00\x00\x00")
    on_cuda = bytearray(data)
    on_cuda[codec.HEADER.size - 9] = 1  # the device byte: encoded on CUDA
    with pytest.raises(codec.CodecError, match="encoded on cuda and this model is on cpu"):
        codec.decode(model, bytes(on_cuda))
    flipped = bytearray(data)
    flipped[codec.HEADER.size] ^= 0xFF  # the first byte of the code
    with pytest.raises(codec.CodecError, match="corrupt"):
        codec.decode(model, bytes(flipped))


def test_bad_images_and_models_are_refused_in_one_sentence():
    model = build("pixelcnn-binary")
    with pytest.raises(InputError, match="shape"):
        codec.encode(model, torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(InputError, match="values must be in 0..1"):
        codec.encode(model, torch.full((2, 1, 5, 4), 2))
    with pytest.raises(InputError, match="integer"):
        codec.encode(model, torch.zeros(2, 1, 5, 4))
    with pytest.raises(InputError, match="class labels"):
        codec.encode(build("gated-class"), torch.zeros(2, 1, 4, 4, dtype=torch.long))
    gan = models.build("dcgan", (1, 8, 8), 2, "tiny")
    with pytest.raises(codec.CodecError, match="no likelihood to code with"):
        codec.encode(gan, torch.zeros(1, 1, 8, 8, dtype=torch.long))
    vector = models.build("gated_pixelcnn", (1, 4, 4), 2, "tiny", cond_shape=(3,))
    with pytest.raises(codec.CodecError, match="decoder would not have"):
        codec.encode(vector, torch.zeros(1, 1, 4, 4, dtype=torch.long), torch.zeros(1, 3))


def test_image_files_are_read_exactly_or_refused(tmp_path):
    x = torch.randint(0, 17, (3, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    paths = save_png_folder(x, 17, tmp_path / "png")
    assert torch.equal(load_images(paths, (1, 8, 8), 17), x)
    rgb = torch.randint(0, 256, (2, 3, 5, 6), generator=torch.Generator().manual_seed(1))
    assert torch.equal(
        load_images(save_png_folder(rgb, 256, tmp_path / "rgb"), (3, 5, 6), 256), rgb
    )
    with pytest.raises(InputError, match="7x8 pixels; the model reads 8x8"):
        Image.fromarray(np.zeros((8, 7), np.uint8)).save(tmp_path / "small.png")
        load_images([tmp_path / "small.png"], (1, 8, 8), 17)
    with pytest.raises(InputError, match="cannot hold exactly"):
        Image.fromarray(np.full((8, 8), 7, np.uint8)).save(tmp_path / "seven.png")
        load_images([tmp_path / "seven.png"], (1, 8, 8), 17)
    with pytest.raises(InputError, match="alpha"):
        Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(tmp_path / "rgba.png")
        load_images([tmp_path / "rgba.png"], (3, 8, 8), 256)
    with pytest.raises(InputError, match="not a readable image"):
        (tmp_path / "junk.png").write_bytes(b"not a png")
        load_images([tmp_path / "junk.png"], (1, 8, 8), 17)


def test_compress_and_decompress_on_the_command_line(tmp_path):
    run = tmp_path / "run"
    from pixelzoo.training import train

    train(small_cfg(steps=3, ckpt_every=3), run, progress=False)
    out = cli("compress", run, "-n", 20, "--out", tmp_path / "a.pzc", "--no-progress").stdout
    assert "bits/dim (the model's NLL:" in out
    cli("decompress", run, tmp_path / "a.pzc", "--out", tmp_path / "png", "--no-progress")
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert len(pngs) == 20
    # The decoded PNGs compress to the same bytes as the dataset's images.
    cli("compress", run, *pngs, "--out", tmp_path / "b.pzc", "--no-progress")
    assert (tmp_path / "a.pzc").read_bytes() == (tmp_path / "b.pzc").read_bytes()
    cli("decompress", run, tmp_path / "b.pzc", "--out", tmp_path / "b.npz", "--no-progress")
    with np.load(tmp_path / "b.npz") as f:
        assert f["images"].shape == (20, 1, 8, 8)
    bad = cli("decompress", run, pngs[0], "--out", tmp_path / "x", check=False)
    assert bad.returncode == 2 and "not a pixelzoo compressed file" in bad.stderr
