"""The evaluator classifier, mode counts (plain and stacked) and the birthday-paradox pairs."""

from __future__ import annotations

import json
import math

import pytest
import torch

from pixelzoo import data
from pixelzoo.data.base import ImageDataset
from pixelzoo.data.stacked import stack_channels
from pixelzoo.errors import CheckpointError, DataError, InputError
from pixelzoo.evaluation.classifier import load_evaluator
from pixelzoo.evaluation.modes import count_modes, mode_statistics, nearest_pairs, save_pairs
from pixelzoo.training import EvaluatorTraining, train_evaluator


def bars(n: int, seed: int, split: str) -> ImageDataset:
    """10 classes of 1x10x10 binary images: class k has row k lit, plus 2% random pixels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(10, (n,), generator=g)
    x = (torch.rand(n, 1, 10, 10, generator=g) < 0.02).to(torch.uint8)
    x[torch.arange(n), 0, labels] = 1
    return ImageDataset(x, 2, labels=labels, name="bars", split=split, num_classes=10)


@pytest.fixture(scope="module")
def bar_evaluator(tmp_path_factory):
    run = tmp_path_factory.mktemp("ev") / "bars"
    splits = {
        "train": bars(600, 0, "train"),
        "valid": bars(200, 1, "valid"),
        "test": bars(200, 2, "test"),
    }
    result = train_evaluator(
        EvaluatorTraining(data="bars", epochs=12, batch_size=32), run, progress=False, splits=splits
    )
    return run, result


def test_mode_statistics_known_answers():
    r = mode_statistics(torch.arange(1000) % 10, 10)
    assert r["modes"] == 10 and abs(r["kl_to_uniform"]) < 1e-12
    r = mode_statistics(torch.tensor([2, 7] * 50), 10)  # 2 of 10 modes, evenly
    assert r["modes"] == 2 and r["kl_to_uniform"] == pytest.approx(math.log(5))
    with pytest.raises(InputError, match="0..9"):
        mode_statistics(torch.tensor([10]), 10)


def test_the_evaluator_is_stored_as_a_run_and_classifies_exactly(bar_evaluator):
    run, result = bar_evaluator
    assert result["test_accuracy"] == 1.0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "evaluator" and cfg["evaluator"]["classes"] == 10
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # The test accuracy is logged last, then the run's time record.
    assert records[-2] == {**records[-2], "split": "test", "accuracy": 1.0}
    assert records[-1]["split"] == "time"
    net = load_evaluator(run)
    x = bars(50, 9, "test")
    # Features and logits of an image do not depend on the batch it comes in.
    u = x.images.float() * 2 - 1
    torch.testing.assert_close(net(u)[:7], net(u[:7]), rtol=1e-5, atol=1e-5)
    assert net.num_features == net(u).shape[1]
    from pixelzoo.training import load_model

    with pytest.raises(CheckpointError, match="evaluator"):
        load_model(run)


def test_mode_count_is_exact_on_a_generator_with_known_modes(bar_evaluator):
    """Stacked bars: channels limited to 5 x 10 x 1 digit values give exactly 50 modes."""
    net = load_evaluator(bar_evaluator[0])
    base = bars(2000, 4, "test")
    assert torch.equal(
        net.predict(base.images.long(), 2), base.labels
    )  # the premise: labels are right
    pick = {c: base.images[base.labels == c] for c in range(10)}
    triples = [(a, b, 3) for a in range(5) for b in range(10)] * 4  # every mode 4 times
    x = torch.stack(
        [
            torch.cat([pick[a][i % 150], pick[b][i % 150], pick[c][i % 150]])
            for i, (a, b, c) in enumerate(triples)
        ]
    )
    r = count_modes(net, x.long(), 2)
    assert r["num_modes"] == 1000 and r["modes"] == 50
    assert r["kl_to_uniform"] == pytest.approx(math.log(1000 / 50), abs=1e-9)
    plain = count_modes(net, x[:, :1].long(), 2)  # one channel: the classes themselves
    assert plain["num_modes"] == 10 and plain["modes"] == 5
    with pytest.raises(InputError, match="10x10"):
        count_modes(net, torch.zeros(3, 1, 8, 8, dtype=torch.long), 2)


def test_stacked_datasets_have_1000_equally_likely_modes():
    digits = data.load("digits", "train")
    s = stack_channels(digits, 3000, seed=0)
    assert s.image_shape == (3, 8, 8) and s.num_classes == 1000
    i = 17
    d = [int(s.labels[i]) // 100, int(s.labels[i]) // 10 % 10, int(s.labels[i]) % 10]
    for c in range(3):  # each channel is a digit image with the label's digit
        match = (digits.images[:, 0] == s.images[i, c]).flatten(1).all(1)
        assert int(digits.labels[match][0]) == d[c]
    assert len(s.labels.unique()) > 900
    assert torch.equal(stack_channels(digits, 50, seed=0).images, s.images[:50])


def test_stacked_mnist_loads(mnist_dir):
    s = data.load("stacked_mnist", "test", mnist_dir, size=500)
    assert s.image_shape == (3, 28, 28) and len(s) == 500 and s.levels == 256


def test_nearest_pairs_find_planted_duplicates(tmp_path):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 17, (40, 1, 8, 8), generator=g)
    x[31] = x[5]
    x[12] = x[2].clamp(max=15)  # nearly the same
    pairs = nearest_pairs(x, 17, k=3)
    assert pairs[0] == (5, 31, 0.0)
    assert pairs[1][:2] == (2, 12) and 0 < pairs[1][2] < pairs[2][2]
    save_pairs(x, pairs, 17, tmp_path / "pairs.png")
    from PIL import Image

    assert Image.open(tmp_path / "pairs.png").size[0] > 3 * 8


def test_train_evaluator_errors(tmp_path, bmnist_dir):
    with pytest.raises(DataError, match="binarize=dynamic"):
        train_evaluator(
            EvaluatorTraining(data="binarized_mnist", data_dir=str(bmnist_dir)), tmp_path / "e"
        )
    assert not (tmp_path / "e" / "config.json").exists()


def test_augmentation_flips_and_shifts_each_image_within_its_border():
    from pixelzoo.evaluation.classifier import DigitClassifier, EvaluatorSpec, augment

    torch.manual_seed(0)
    u = torch.randn(64, 3, 8, 8)
    out = augment(u, shift=2)
    padded = torch.nn.functional.pad(u, (2, 2, 2, 2), mode="reflect")
    seen = set()
    for k in range(len(u)):
        found = [
            (f, dy, dx)
            for f in (False, True)
            for dy in range(5)
            for dx in range(5)
            if torch.equal(
                out[k], (padded[k].flip(2) if f else padded[k])[:, dy : dy + 8, dx : dx + 8]
            )
        ]
        assert found, f"image {k} is no flipped shift of its input"
        seen.add(found[0])
    assert len(seen) > 20  # the flips and shifts vary from image to image
    # Augmented only while training: evaluation sees the images themselves.
    net = DigitClassifier(EvaluatorSpec((3, 8, 8), 4, 2, width=4, features=8, augment=True))
    batch = (torch.randint(0, 4, (6, 3, 8, 8)), torch.randint(0, 2, (6,)))
    net.eval()
    assert torch.equal(net.loss(batch), net.loss(batch))
    net.train()
    net.dropout.p = 0.0
    assert not torch.equal(net.loss(batch), net.loss(batch))
