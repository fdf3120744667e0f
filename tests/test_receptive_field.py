"""Receptive fields measured by gradients: the triangle, the blind spot, and no blind spot.

PixelRNN §3.1-3.2: the Row LSTM sees a triangle above the pixel; the Diagonal
BiLSTM sees every pixel before it. PixelCNN's stacked masked convolutions leave
a blind spot above-right (van den Oord et al. 2016b, §2.2).
"""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from pixelzoo import models
from pixelzoo.errors import InputError
from pixelzoo.evaluation import plot_receptive_fields, receptive_field


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("shape", [(1, 10, 12), (3, 6, 7)])
def test_diagonal_bilstm_sees_every_pixel_before_it(layers, shape):
    torch.manual_seed(0)
    model = models.build("diagonal_bilstm", shape, 4, hidden=6, layers=layers, out_hidden=12)
    _, h, w = shape
    # The middle, the first row, the first and last column, the last pixel.
    for pixel in [(h // 2, w // 2 - 1), (0, w // 2), (h // 2, 0), (h // 2, w - 1), (h - 1, w - 1)]:
        rf = receptive_field(model, pixel)
        assert rf.future_seen == 0, f"pixel {pixel} sees the future"
        assert rf.blind_spot == 0, f"pixel {pixel} misses {(rf.past & ~rf.seen).nonzero().tolist()}"


def test_row_lstm_sees_a_triangle_above():
    """Row r - e is seen up to column j + e + 2 (1x3 kernels after a 7x7 first layer), no further."""
    torch.manual_seed(0)
    model = models.build("row_lstm", (1, 10, 20), 2, hidden=4, layers=2, out_hidden=8)
    i, j = 7, 8
    rf = receptive_field(model, (i, j))
    assert rf.future_seen == 0
    for r in range(i):
        e = i - r
        for col in range(j, 20):
            assert bool(rf.seen[r, col]) == (col <= j + e + 2), f"pixel {(r, col)}"
    # Above-right outside the triangle: unseen, so the Row LSTM has a blind spot.
    assert not rf.seen[i - 1, 19] and rf.blind_spot > 0


def test_pixelcnn_has_a_blind_spot_the_diagonal_bilstm_does_not():
    shape, pixel = (1, 12, 12), (7, 5)
    torch.manual_seed(0)
    cnn = receptive_field(
        models.build("pixelcnn", shape, 2, hidden=4, blocks=2, out_hidden=8), pixel
    )
    rnn = receptive_field(
        models.build("diagonal_bilstm", shape, 2, hidden=4, layers=2, out_hidden=8), pixel
    )
    assert cnn.future_seen == 0 and rnn.future_seen == 0
    above_right = (6, 11)
    assert not cnn.seen[above_right] and rnn.seen[above_right]
    assert cnn.blind_spot > 0 and rnn.blind_spot == 0


def gated_reach_box(shape, pixel, layers: int, first_kernel: int, kernel: int) -> torch.Tensor:
    """The Gated PixelCNN's receptive field derived from its stacks (gated_pixelcnn.py).

    The vertical stack grows by k//2 rows up and k//2 columns each side per layer,
    is read one row down, and the horizontal stack grows by k//2 to the left: a
    box of rows i-(k0//2+1+L k//2)..i-1, columns j-r..j+r, plus row i from j-r.
    """
    _, h, w = shape
    i, j = pixel
    r = first_kernel // 2 + layers * (kernel // 2)
    box = torch.zeros(h, w, dtype=torch.bool)
    box[max(0, i - r - 1) : i, max(0, j - r) : j + r + 1] = True
    box[i, max(0, j - r) : j] = True
    return box


@pytest.mark.parametrize(
    "shape,layers,kernel", [((1, 20, 24), 2, 3), ((1, 20, 24), 3, 5), ((3, 12, 13), 1, 3)]
)
def test_gated_pixelcnn_sees_exactly_the_reach_of_its_stacks(shape, layers, kernel):
    """Every pixel above within reach, above-right included, and none beyond or after."""
    torch.manual_seed(0)
    model = models.build(
        "gated_pixelcnn", shape, 4, hidden=6, layers=layers, kernel=kernel, out_hidden=8
    )
    _, h, w = shape
    for pixel in [(h // 2, w // 2), (h // 2, 1), (h - 1, w - 1), (1, w // 2)]:
        rf = receptive_field(model, pixel)
        expected = gated_reach_box(shape, pixel, layers, 7, kernel)
        assert rf.future_seen == 0, f"pixel {pixel} sees the future"
        missed = (expected & ~rf.seen).nonzero().tolist()
        extra = (rf.seen & ~expected).nonzero().tolist()
        assert not missed and not extra, f"pixel {pixel}: misses {missed}, sees beyond {extra}"


def test_gated_pixelcnn_has_no_blind_spot_where_pixelcnn_has_one():
    """Inside the region both can reach, PixelCNN misses the wedge above-right; Gated does not."""
    shape, pixel = (1, 16, 16), (9, 6)
    torch.manual_seed(0)
    cnn = receptive_field(models.build("pixelcnn", shape, 2, hidden=4, blocks=2), pixel)
    gated = receptive_field(models.build("gated_pixelcnn", shape, 2, hidden=4, layers=2), pixel)
    box = gated_reach_box(shape, pixel, 2, 7, 3)  # rows 3..8, columns 1..11: in PixelCNN's reach
    above_right = (8, 11)
    assert box[above_right] and not cnn.seen[above_right] and gated.seen[above_right]
    assert int((box & ~cnn.seen).sum()) > 0 and int((box & ~gated.seen).sum()) == 0
    assert cnn.future_seen == 0 and gated.future_seen == 0


def test_plot_writes_a_png(tmp_path):
    torch.manual_seed(0)
    fields = {
        name: receptive_field(models.build(name, (1, 8, 8), 2, **kw))
        for name, kw in [("pixelcnn", dict(hidden=4, blocks=1)), ("row_lstm", dict(layers=1))]
    }
    path = tmp_path / "rf.png"
    plot_receptive_fields(fields, path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.width > im.height > 100
    assert [p.name for p in tmp_path.iterdir()] == ["rf.png"]


def test_pixel_outside_the_image_is_named():
    model = models.build("pixelcnn", (1, 8, 8), 2)
    with pytest.raises(InputError, match=r"pixel \(8, 0\) is outside the 8x8 image"):
        receptive_field(model, (8, 0))
