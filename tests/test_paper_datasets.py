"""The papers' other datasets in their files' real layouts (SVHN's .mat, downsampled
ImageNet's .npz batches, CelebA's image folder and partition file), written small here:
what they load, and a corrupt and a truncated file of each (Fashion-MNIST is in
test_data, beside MNIST)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from pixelzoo import data
from pixelzoo.errors import ConfigError, DataError


# ------------------------------------------------------------------------------ SVHN
def _write_svhn(folder, n_train=12, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = rng.integers(1, 11, (n, 1)).astype(np.uint8)  # 1..10, 10 is the digit 0
        savemat(folder / f"{name}_32x32.mat", {"X": x, "y": y})
        made[name] = (x, y)
    return made


def test_svhn_reads_the_mat_files_with_digit_labels(tmp_path):
    made = _write_svhn(tmp_path / "svhn")
    test = data.load("svhn", "test", tmp_path / "svhn")
    x, y = made["test"]
    assert test.images.shape == (5, 3, 32, 32) and test.levels == 256
    # X is [H, W, C, N]: image k, channel c is X[:, :, c, k].
    assert torch.equal(test.images[2, 1], torch.from_numpy(x[:, :, 1, 2]))
    assert test.labels.tolist() == [int(v) % 10 for v in y[:, 0]]
    assert test.classes == tuple("0123456789")
    train = data.load("svhn", "train", tmp_path / "svhn", valid_size=4)
    valid = data.load("svhn", "valid", tmp_path / "svhn", valid_size=4)
    assert len(train) == 8 and len(valid) == 4
    assert torch.equal(valid.images[0, 0], torch.from_numpy(made["train"][0][:, :, 0, 8]))
    with pytest.raises(DataError, match="has no extra_32x32.mat"):
        data.load("svhn", "train", tmp_path / "svhn", valid_size=4, extra=True)


def test_svhn_corrupt_truncated_and_wrong_files_are_one_sentence(tmp_path):
    _write_svhn(tmp_path / "svhn")
    path = tmp_path / "svhn" / "test_32x32.mat"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="test_32x32.mat is corrupt or truncated"):
        data.load("svhn", "test", tmp_path / "svhn")
    path.write_bytes(b"MATLAB? no" * 30)
    with pytest.raises(DataError, match="corrupt or truncated"):
        data.load("svhn", "test", tmp_path / "svhn")
    savemat(path, {"X": np.zeros((28, 28, 3, 2), np.uint8), "y": np.ones((2, 1))})
    with pytest.raises(DataError, match=r"not uint8 \[32, 32, 3, N\]"):
        data.load("svhn", "test", tmp_path / "svhn")
    savemat(path, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[1], [11]])})
    with pytest.raises(DataError, match="a label is 11, not 1..10"):
        data.load("svhn", "test", tmp_path / "svhn")


# -------------------------------------------------------------------------- ImageNet
def _write_imagenet(root, size=32, per_batch=3, n_valid=4, seed=0):
    rng = np.random.default_rng(seed)
    train_dir, val_dir = root / f"Imagenet{size}_train_npz", root / f"Imagenet{size}_val_npz"
    train_dir.mkdir(parents=True)
    val_dir.mkdir(parents=True)
    batches = []
    for i in range(1, 11):
        x = rng.integers(0, 256, (per_batch, 3 * size * size), dtype=np.uint8)
        y = rng.integers(1, 1001, per_batch)
        np.savez(train_dir / f"train_data_batch_{i}.npz", data=x, labels=list(y), mean=x.mean(0))
        batches.append((x, y))
    x = rng.integers(0, 256, (n_valid, 3 * size * size), dtype=np.uint8)
    y = rng.integers(1, 1001, n_valid)
    np.savez(val_dir / "val_data.npz", data=x, labels=list(y), mean=x.mean(0))
    return batches, (x, y)


@pytest.mark.parametrize("size", [32, 64])
def test_downsampled_imagenet_reads_its_npz_batches(tmp_path, size):
    batches, (vx, vy) = _write_imagenet(tmp_path, size)
    test = data.load("imagenet", "test", tmp_path, size=size)  # the official validation images
    assert test.images.shape == (4, 3, size, size) and test.num_classes == 1000
    # Rows are channel-major: R plane, G plane, B plane.
    assert torch.equal(test.images[1].flatten(), torch.from_numpy(vx[1]))
    assert test.labels.tolist() == [int(v) - 1 for v in vy]
    train = data.load("imagenet", "train", tmp_path, size=size, valid_size=5)
    valid = data.load("imagenet", "valid", tmp_path, size=size, valid_size=5)
    assert len(train) == 25 and len(valid) == 5  # 10 batches of 3, the last 5 for validation
    assert torch.equal(train.images[3].flatten(), torch.from_numpy(batches[1][0][0]))
    other = 64 if size == 32 else 32
    with pytest.raises(DataError, match=f"not the {other}x{other} batches asked for"):
        data.load("imagenet", "test", tmp_path, size=other)


def test_downsampled_imagenet_errors_are_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="behind image-net.org's login"):
        data.load("imagenet", "test")
    _write_imagenet(tmp_path)
    path = tmp_path / "Imagenet32_val_npz" / "val_data.npz"
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="val_data.npz is corrupt or truncated"):
        data.load("imagenet", "test", tmp_path)
    np.savez(path, images=np.zeros((2, 3072), np.uint8))
    with pytest.raises(DataError, match="has no 'data' array"):
        data.load("imagenet", "test", tmp_path)
    (tmp_path / "Imagenet32_train_npz" / "train_data_batch_7.npz").unlink()
    with pytest.raises(DataError, match="holds no train_data_batch_7.npz"):
        data.load("imagenet", "train", tmp_path)


# ---------------------------------------------------------------------------- CelebA
def _write_celeba(root, codes=(0, 0, 0, 1, 2, 2), csv=False):
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = []
    for k, _ in enumerate(codes, start=1):
        name = f"{k:06d}.jpg"
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)  # the real 178x218
        Image.fromarray(pixels).save(folder / name, quality=95)
        names.append(name)
    if csv:
        text = "image_id,partition\n" + "".join(
            f"{n},{c}\n" for n, c in zip(names, codes, strict=True)
        )
        (root / "list_eval_partition.csv").write_text(text)
    else:
        text = "".join(f"{n} {c}\n" for n, c in zip(names, codes, strict=True))
        (root / "list_eval_partition.txt").write_text(text)
    return folder, names


@pytest.mark.parametrize("csv", [False, True])
def test_celeba_follows_the_official_partition_and_crops_the_centre(tmp_path, csv):
    folder, names = _write_celeba(tmp_path, csv=csv)
    train = data.load("celeba", "train", tmp_path, size=32)
    valid = data.load("celeba", "valid", tmp_path, size=32)
    test = data.load("celeba", "test", tmp_path, size=32)
    assert (len(train), len(valid), len(test)) == (3, 1, 2)
    assert train.images.shape == (3, 3, 32, 32) and train.levels == 256
    # The 148x148 centre crop of the 178x218 image, resized to 32x32 (Lanczos).
    with Image.open(folder / names[4]) as im:
        left, top = (178 - 148) // 2, (218 - 148) // 2
        want = np.asarray(
            im.convert("RGB")
            .crop((left, top, left + 148, top + 148))
            .resize((32, 32), Image.Resampling.LANCZOS)
        )
    assert torch.equal(test.images[0], torch.from_numpy(want.transpose(2, 0, 1).copy()))
    # The second load comes from the decode cache and is the same.
    assert torch.equal(data.load("celeba", "test", tmp_path, size=32).images, test.images)


def test_celeba_errors_are_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="needs --data-dir"):
        data.load("celeba", "train")
    with pytest.raises(DataError, match="has no img_align_celeba/"):
        data.load("celeba", "train", tmp_path)
    folder, names = _write_celeba(tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 7\n")
    with pytest.raises(DataError, match="line 2 is not 'IMAGE PARTITION'"):
        data.load("celeba", "train", tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000099.jpg 0\n")
    with pytest.raises(DataError, match="000099.jpg is missing"):
        data.load("celeba", "train", tmp_path)
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n")
    jpeg = (folder / names[1]).read_bytes()
    (folder / names[1]).write_bytes(jpeg[:200])  # truncated
    with pytest.raises(DataError, match="000002.jpg cannot be read"):
        data.load("celeba", "train", tmp_path, size=8)
    (folder / names[1]).write_bytes(b"not a jpeg at all")  # corrupt
    with pytest.raises(DataError, match="000002.jpg cannot be read"):
        data.load("celeba", "train", tmp_path, size=8)
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="no list_eval_partition.txt or list_eval_partition.csv"):
        data.load("celeba", "train", tmp_path)
