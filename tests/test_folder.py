"""Image folders: labelled (ImageFolder layout), split or flat; the decode cache; class names in runs."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from conftest import shared
from helpers import cli
from PIL import Image

from pixelzoo import data
from pixelzoo.data import folder as folder_mod
from pixelzoo.errors import DataError
from pixelzoo.evaluation.classifier import load_evaluator
from pixelzoo.runs import Run


def write_labelled(
    root, classes=("cat", "airplane", "bird"), n=10, size=8, splits=("train", "test")
):
    """``root/SPLIT/CLASS/k.png``, each image a flat colour that encodes (class, k)."""
    for split in splits:
        for c, name in enumerate(classes):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                value = (c * 80, k * 20, 7 if split == "test" else 200)
                Image.new("RGB", (size, size), value).save(root / split / name / f"{k:03d}.png")


def count_decodes(monkeypatch) -> list:
    calls = []
    real = folder_mod._decode

    def counting(*args):
        calls.append(args[0])
        return real(*args)

    monkeypatch.setattr(folder_mod, "_decode", counting)
    return calls


def test_labelled_folder_classes_sorted_and_a_fixed_validation_split(tmp_path):
    write_labelled(tmp_path)
    splits = {s: data.load("folder", s, tmp_path, size=8) for s in data.SPLITS}
    for ds in splits.values():
        assert ds.classes == ("airplane", "bird", "cat") and ds.num_classes == 3
        assert ds.image_shape == (3, 8, 8) and ds.levels == 256
    # Every image's red value says its class in the order written (cat, airplane, bird):
    # the label is its position in the sorted names.
    by_red = {0: 2, 80: 0, 160: 1}
    for ds in splits.values():
        assert [by_red[int(r)] for r in ds.images[:, 0, 0, 0]] == ds.labels.tolist()
    # No valid/ folder: 10% of train (3 of 30), the same each time, disjoint from train.
    train, valid = splits["train"], splits["valid"]
    assert (len(train), len(valid), len(splits["test"])) == (27, 3, 30)
    key = lambda ds: {tuple(x) for x in ds.images[:, :, 0, 0].tolist()}  # noqa: E731
    assert not key(train) & key(valid) and len(key(train) | key(valid)) == 30
    assert torch.equal(data.load("folder", "valid", tmp_path, size=8).images, valid.images)
    assert int(splits["test"].images[:, 2].max()) == 7  # the test folder's own images
    # A valid/ folder, when present, is the validation split and train keeps all its images.
    write_labelled(tmp_path, splits=("valid",), n=4)
    assert len(data.load("folder", "valid", tmp_path, size=8)) == 12
    assert len(data.load("folder", "train", tmp_path, size=8)) == 30


def test_test_folder_labels_follow_the_training_class_order(tmp_path):
    write_labelled(tmp_path, classes=("a", "b", "c"), splits=("train",), n=2)
    write_labelled(tmp_path, classes=("c",), splits=("test",), n=2)
    test = data.load("folder", "test", tmp_path, size=8)
    assert test.classes == ("a", "b", "c") and test.labels.tolist() == [2, 2]
    write_labelled(tmp_path, classes=("zebra",), splits=("test",), n=1)
    with pytest.raises(DataError, match="has class 'zebra', which .*train has not"):
        data.load("folder", "test", tmp_path, size=8)


def test_folder_layout_errors_are_one_sentence(tmp_path):
    write_labelled(tmp_path, n=2)
    Image.new("RGB", (8, 8)).save(tmp_path / "train" / "loose.png")
    with pytest.raises(DataError, match="mixes class folders .* with loose images \\(loose.png\\)"):
        data.load("folder", "train", tmp_path)
    (tmp_path / "train" / "loose.png").unlink()
    (tmp_path / "train" / "bird" / "001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DataError, match="bird/001.png cannot be read"):
        data.load("folder", "train", tmp_path)
    os.rename(tmp_path / "test", tmp_path / "t")
    with pytest.raises(DataError, match="has train/ but no test/ folder"):
        data.load("folder", "test", tmp_path)


def test_decoded_images_are_cached_and_rebuilt_when_a_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELZOO_DATA", str(tmp_path / "cache"))
    write_labelled(tmp_path / "d", n=5)
    calls = count_decodes(monkeypatch)
    first = data.load("folder", "test", tmp_path / "d", size=8)
    assert len(calls) == 15 and len(list((tmp_path / "cache" / "decoded").glob("*.npz"))) == 1
    again = data.load("folder", "test", tmp_path / "d", size=8, levels=16)
    assert len(calls) == 15, "the second load decoded again instead of reading the cache"
    assert torch.equal(again.images, data.quantize(first.images, 16))
    assert again.labels.tolist() == first.labels.tolist() and again.classes == first.classes
    # Other decoding options are another cache entry.
    data.load("folder", "test", tmp_path / "d", size=4)
    assert len(calls) == 30
    # A changed file (new pixels, new mtime) is seen: the folder is decoded again.
    changed = tmp_path / "d" / "test" / "cat" / "000.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    fresh = data.load("folder", "test", tmp_path / "d", size=8)
    assert len(calls) == 45
    assert (fresh.images[:, :, 0, 0] == torch.tensor([1, 2, 3], dtype=torch.uint8)).all(1).any()
    # So is a removed file, and a damaged cache file is decoded again rather than read.
    (tmp_path / "d" / "test" / "bird" / "004.png").unlink()
    assert len(data.load("folder", "test", tmp_path / "d", size=8)) == 14 and len(calls) == 59
    for f in (tmp_path / "cache" / "decoded").glob("*.npz"):
        f.write_bytes(f.read_bytes()[:100])
    assert len(data.load("folder", "test", tmp_path / "d", size=8)) == 14 and len(calls) == 73


def test_centre_crop_keeps_the_middle_of_a_wide_image(tmp_path):
    (tmp_path / "train").mkdir()
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # white in the middle third only
    for k in range(3):
        Image.fromarray(wide).save(tmp_path / "train" / f"{k}.png")
    cropped = data.load("folder", "train", tmp_path, size=10, crop=True)
    assert cropped.labels is None and int(cropped.images.min()) >= 250
    squashed = data.load("folder", "train", tmp_path, size=10, crop=False)
    assert int(squashed.images[0, 0, 5, 0]) < 5  # the black left third, squeezed in


def test_conditional_run_samples_a_class_by_name_or_number(tmp_path):
    write_labelled(tmp_path / "pics", n=4)
    run = tmp_path / "run"
    cli(
        "train", "--model", "gated_pixelcnn", "--preset", "tiny", "--cond", "class",
        "--data", "folder", "--data-dir", tmp_path / "pics", "--set", "data.size=8",
        "--set", "data.levels=4", "--steps", "1", "--batch-size", "4", "--out", run,
        "--no-progress", "--set", "samples=0",
    )  # fmt: skip
    assert Run(run).classes == ("airplane", "bird", "cat")
    assert Run(run).class_index("cat") == 2 and Run(run).class_index("1") == 1
    out = cli("sample", run, "-n", "2", "--class", "bird", "--out", tmp_path / "s.png")
    assert "of class bird" in out.stdout and (tmp_path / "s.png").exists()
    bad = cli(
        "sample", run, "-n", "2", "--class", "zebra", "--out", tmp_path / "z.png", check=False
    )
    assert (
        bad.returncode != 0
        and "has no class 'zebra'; its classes: airplane, bird, cat" in bad.stderr
    )


def test_cifar10_jpeg_test_split_as_an_image_folder():
    root = shared("cifar10-jpeg")
    test = data.load("folder", "test", root)
    assert test.image_shape == (3, 32, 32) and len(test) == 10_000
    assert test.classes[:3] == ("airplane", "automobile", "bird") and len(test.classes) == 10
    assert torch.bincount(test.labels).tolist() == [1000] * 10
    # JPEG keeps each 8x8 block's mean, so the decoded training images have the original
    # CIFAR-10's channel means (0.4914, 0.4822, 0.4465 of 255). (The data README's figures,
    # R 125.0, G 121.6, B 110.0 on every 25th image, are not reproduced: that subset gives
    # 125.2, 122.6, 113.1 here.)
    train = folder_mod.decode_folder(root / "train", size=32, channels=3, crop=True)
    assert train.images.shape == (50_000, 3, 32, 32) and train.classes == test.classes
    means = torch.from_numpy(train.images).double().mean((0, 2, 3)) / 255
    assert torch.allclose(
        means, torch.tensor([0.4914, 0.4822, 0.4465], dtype=torch.double), atol=0.001
    ), means


def test_an_evaluator_on_a_labelled_colour_folder_is_augmented(tmp_path):
    write_labelled(tmp_path / "pics", n=6)
    run = tmp_path / "ev"
    out = cli(
        "train-evaluator", "--data", "folder", "--data-dir", tmp_path / "pics", "--set",
        "data.size=8", "--epochs", "1", "--width", "4", "--batch-size", "8", "--out", run,
        "--no-progress",
    )  # fmt: skip
    assert "test accuracy" in out.stdout
    spec = Run(run).evaluator_spec
    assert spec["augment"] is True and spec["width"] == 4 and spec["classes"] == 3
    assert spec["batchnorm"] is True  # colour: batch norm after every convolution
    assert Run(run).classes == ("airplane", "bird", "cat")
    # Loaded as it was trained: the batch norm's running statistics come back with the
    # weights, and features are those of eval mode, whatever else is in the batch.
    net = load_evaluator(run)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 6
    assert int(net.body[1].num_batches_tracked) > 0
    x = torch.randint(0, 256, (5, 3, 8, 8))
    u = x.float() / 127.5 - 1
    assert torch.allclose(net(u)[:2], net(u[:2]), atol=1e-5)
