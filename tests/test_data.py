"""Dataset loaders on the real files, in every accepted form, and on broken files."""

from __future__ import annotations

import gzip
import http.server
import pickle
import shutil
import socket
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from pixelzoo import data
from pixelzoo.data.download import fetch, md5sum
from pixelzoo.errors import ConfigError, DataError


def test_digits_splits_partition_the_bundled_set():
    splits = {s: data.load("digits", s) for s in data.SPLITS}
    assert sum(len(d) for d in splits.values()) == 1797
    for d in splits.values():
        assert d.levels == 17 and d.image_shape == (1, 8, 8) and d.num_classes == 10
        assert int(d.images.max()) <= 16 and d.labels is not None
    # Disjoint: no image index appears twice (compare raw bytes + label).
    keys = [
        bytes(x.numpy()) + bytes([int(y)])
        for d in splits.values()
        for x, y in zip(d.images, d.labels, strict=True)
    ]
    assert len(set(keys)) >= 1797 - 5  # the digits set holds a handful of exact duplicates


def test_binarized_mnist_gz_and_plain_amat_agree(bmnist_dir, tmp_path):
    ds = data.load("binarized_mnist", "test", bmnist_dir)
    assert ds.images.shape == (10000, 1, 28, 28) and ds.levels == 2
    assert abs(ds.images.float().mean().item() - 0.1325) < 5e-4  # the README's pixel mean
    # Uncompressed .amat, as the canonical server serves it.
    with gzip.open(bmnist_dir / "binarized_mnist_test.amat.gz") as f:
        (tmp_path / "binarized_mnist_test.amat").write_bytes(f.read())
    plain = data.load("binarized_mnist", "test", tmp_path)
    assert torch.equal(plain.images, ds.images)


def test_binarized_mnist_split_sizes(bmnist_dir):
    assert len(data.load("binarized_mnist", "valid", bmnist_dir)) == 10000


def test_truncated_gzip_is_named(bmnist_dir, tmp_path):
    raw = (bmnist_dir / "binarized_mnist_test.amat.gz").read_bytes()
    (tmp_path / "binarized_mnist_test.amat.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match="binarized_mnist_test.amat.gz.*(corrupt|truncated)"):
        data.load("binarized_mnist", "test", tmp_path)


def test_truncated_and_corrupt_amat_are_named(bmnist_dir, tmp_path):
    with gzip.open(bmnist_dir / "binarized_mnist_test.amat.gz") as f:
        text = f.read()
    path = tmp_path / "binarized_mnist_test.amat"
    path.write_bytes(text[: len(text) - 1000])  # cut inside the last lines
    with pytest.raises(DataError, match="truncated or corrupt"):
        data.load("binarized_mnist", "test", tmp_path)
    path.write_bytes(text.replace(b"1", b"7", 1))
    with pytest.raises(DataError, match="characters other than"):
        data.load("binarized_mnist", "test", tmp_path)
    # Same number of values, but one line one value short and another one long.
    lines = text.split(b"\n")
    lines[0], lines[1] = lines[0][:-2], lines[1] + b" 0"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match="exactly 784"):
        data.load("binarized_mnist", "test", tmp_path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(DataError, match="binarized_mnist_train.amat"):
        data.load("binarized_mnist", "train", tmp_path)


def test_mnist_idx_gz_plain_and_splits(mnist_dir, tmp_path):
    test = data.load("mnist", "test", mnist_dir)
    assert test.images.shape == (10000, 1, 28, 28) and test.levels == 256
    assert test.labels.shape == (10000,) and set(test.labels.tolist()) == set(range(10))
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(mnist_dir / f"{name}.gz") as f:
            (tmp_path / name).write_bytes(f.read())
    assert torch.equal(data.load("mnist", "test", tmp_path).images, test.images)
    train = data.load("mnist", "train", mnist_dir)
    valid = data.load("mnist", "valid", mnist_dir)
    assert len(train) == 50000 and len(valid) == 10000
    assert len(data.load("mnist", "train", mnist_dir, valid_size=0)) == 60000
    with pytest.raises(ConfigError, match="no 'valid' split"):
        data.load("mnist", "valid", mnist_dir, valid_size=0)
    assert data.load("mnist", "test", mnist_dir, levels=4).images.max() == 3


def test_mnist_binarization(mnist_dir):
    dyn = data.load("mnist", "train", mnist_dir, binarize="dynamic")
    assert dyn.levels == 2 and dyn.dynamic_binarize
    idx = torch.arange(64)
    a, _ = dyn.get_batch(idx, torch.Generator().manual_seed(1))
    b, _ = dyn.get_batch(idx, torch.Generator().manual_seed(1))
    c, _ = dyn.get_batch(idx, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0, 1}
    # The mean of a dynamic binarization is the mean grey level / 255.
    grey = dyn.images[idx].float().mean() / 255
    assert abs(a.float().mean() - grey) < 0.01
    fixed1 = data.load("mnist", "test", mnist_dir, binarize="dynamic")
    fixed2 = data.load("mnist", "test", mnist_dir, binarize="dynamic")
    assert torch.equal(fixed1.images, fixed2.images) and fixed1.levels == 2
    thr = data.load("mnist", "test", mnist_dir, binarize="threshold")
    assert torch.equal(
        thr.images, (data.load("mnist", "test", mnist_dir).images > 127).to(torch.uint8)
    )


def test_truncated_idx_is_named(mnist_dir, tmp_path):
    with gzip.open(mnist_dir / "t10k-images-idx3-ubyte.gz") as f:
        raw = f.read()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-784])
    shutil.copy(mnist_dir / "t10k-labels-idx1-ubyte.gz", tmp_path)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte is truncated"):
        data.load("mnist", "test", tmp_path)


def _cifar_arrays(n_per_batch: int, seed: int):
    rng = np.random.default_rng(seed)
    return [
        (
            rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            rng.integers(0, 10, n_per_batch).tolist(),
        )
        for _ in range(6)
    ]


def _write_cifar_py(folder, batches):
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, (x, y) in zip(names, batches, strict=True):
        with open(folder / name, "wb") as f:
            pickle.dump(
                {
                    b"batch_label": name.encode(),
                    b"labels": y,
                    b"data": x,
                    b"filenames": [b"x.png"] * len(y),
                },
                f,
                protocol=2,
            )


def _write_cifar_bin(folder, batches):
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for name, (x, y) in zip(names, batches, strict=True):
        rec = np.concatenate([np.array(y, dtype=np.uint8)[:, None], x], axis=1)
        rec.tofile(folder / name)


def test_cifar10_python_and_binary_layouts(tmp_path):
    batches = _cifar_arrays(20, 0)
    _write_cifar_py(tmp_path / "py" / "cifar-10-batches-py", batches)
    _write_cifar_bin(tmp_path / "bin" / "cifar-10-batches-bin", batches)
    for split, n in (("train", 95), ("valid", 5), ("test", 20)):
        a = data.load("cifar10", split, tmp_path / "py", valid_size=5)
        b = data.load("cifar10", split, tmp_path / "bin", valid_size=5)
        assert a.images.shape == (n, 3, 32, 32) and a.levels == 256
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    # Channel-major layout: the first 1024 bytes are the red plane.
    test = data.load("cifar10", "test", tmp_path / "py")
    assert torch.equal(test.images[0, 0].flatten(), torch.from_numpy(batches[5][0][0, :1024]))


def test_cifar10_rejects_malicious_pickle_and_truncated_binary(tmp_path):
    batches = _cifar_arrays(4, 1)
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_py(folder, batches)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match="test_batch is not a valid CIFAR-10"):
        data.load("cifar10", "test", tmp_path)
    bin_folder = tmp_path / "b" / "cifar-10-batches-bin"
    _write_cifar_bin(bin_folder, batches)
    raw = (bin_folder / "test_batch.bin").read_bytes()
    (bin_folder / "test_batch.bin").write_bytes(raw[:-10])
    with pytest.raises(DataError, match="test_batch.bin is truncated"):
        data.load("cifar10", "test", tmp_path / "b")


def test_folder_of_images(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(20):
        arr = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
        Image.fromarray(arr).save(tmp_path / f"img{i:02d}.{'png' if i % 2 else 'jpg'}")
    splits = {
        s: data.load("folder", s, tmp_path, size=16, channels=1, levels=8) for s in data.SPLITS
    }
    assert sum(len(d) for d in splits.values()) == 20
    tr = splits["train"]
    assert tr.image_shape == (1, 16, 16) and tr.levels == 8 and int(tr.images.max()) <= 7
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="broken.png cannot be read"):
        for s in data.SPLITS:
            data.load("folder", s, tmp_path)


def test_unknown_names_list_valid_ones():
    with pytest.raises(ConfigError, match="valid names: .*binarized_mnist"):
        data.load("nope", "train")
    with pytest.raises(ConfigError, match="valid splits"):
        data.load("digits", "training")
    with pytest.raises(ConfigError, match="valid options: .*binarize"):
        data.load("mnist", "train", None, binarise="dynamic")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    www = tmp_path / "www"
    www.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(www))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_verifies_checksum_atomically(http_folder, tmp_path):
    www, base = http_folder
    (www / "f.bin").write_bytes(b"pixelzoo" * 1000)
    good = md5sum(www / "f.bin")
    dest = tmp_path / "cache" / "f.bin"
    assert fetch(f"{base}/f.bin", dest, good).read_bytes() == b"pixelzoo" * 1000
    dest2 = tmp_path / "cache" / "g.bin"
    with pytest.raises(DataError, match="corrupt .*nothing was saved"):
        fetch(f"{base}/f.bin", dest2, "0" * 32)
    assert not dest2.exists() and not list(dest2.parent.glob("*.part"))


def test_download_without_network_says_where_to_put_the_file(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=r"could not download f.bin .*put the file f.bin in"):
        fetch(f"http://127.0.0.1:{port}/f.bin", tmp_path / "f.bin", "0" * 32, timeout=5)


# ---------------------------------------------------------------------- crafted and broken files
def _write_idx(path, ndim_header: bytes, body: bytes = b""):
    path.write_bytes(ndim_header + body)


def test_short_idx_headers_and_bad_labels_are_named(tmp_path):
    import struct

    # The magic says three dimensions; the file ends inside the header.
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", b"\x00\x00\x08\x03" + b"\x00\x00")
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01" + struct.pack(">I", 10000),
               bytes(10000))  # fmt: skip
    with pytest.raises(DataError, match="end inside the idx header"):
        data.load("mnist", "test", tmp_path)
    # Whole files, but a label of 12: not a digit.
    images = b"\x00\x00\x08\x03" + struct.pack(">III", 10000, 28, 28) + bytes(10000 * 784)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    labels = bytearray(10000)
    labels[17] = 12
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", b"\x00\x00\x08\x01" + struct.pack(">I", 10000),
               bytes(labels))  # fmt: skip
    with pytest.raises(DataError, match=r"a label is 12, not a class 0\.\.9"):
        data.load("mnist", "test", tmp_path)


def _write_idx_set(folder, n_train: int, n_test: int, seed: int = 0):
    """The four gzipped idx files of an MNIST-layout dataset, with random content."""
    import gzip
    import struct

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n, dtype=np.uint8)
        head = b"\x00\x00\x08\x03" + struct.pack(">III", n, 28, 28)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(head + x.tobytes()))
        head = b"\x00\x00\x08\x01" + struct.pack(">I", n)
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(head + y.tobytes()))
        made[prefix] = (x, y)
    return made


def test_fashion_mnist_reads_its_idx_files_with_its_class_names(tmp_path):
    made = _write_idx_set(tmp_path / "fashion", n_train=30, n_test=12)
    test = data.load("fashion_mnist", "test", tmp_path / "fashion")
    assert test.images.shape == (12, 1, 28, 28) and test.levels == 256
    assert torch.equal(test.images[:, 0], torch.from_numpy(made["t10k"][0]))
    assert torch.equal(test.labels, torch.from_numpy(made["t10k"][1].astype(np.int64)))
    assert test.classes[0] == "T-shirt/top" and test.classes[9] == "Ankle boot"
    train = data.load("fashion_mnist", "train", tmp_path / "fashion", valid_size=10)
    valid = data.load("fashion_mnist", "valid", tmp_path / "fashion", valid_size=10)
    assert len(train) == 20 and len(valid) == 10  # the last valid_size training images
    assert torch.equal(valid.images[:, 0], torch.from_numpy(made["train"][0][20:]))
    binary = data.load("fashion_mnist", "test", tmp_path / "fashion", binarize="threshold")
    assert binary.levels == 2 and int(binary.images.max()) == 1
    with pytest.raises(ConfigError, match="leaves no training images"):
        data.load("fashion_mnist", "train", tmp_path / "fashion")  # 10,000 of 30
    # Truncated and corrupt files are one sentence naming the file.
    path = tmp_path / "fashion" / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is corrupt or truncated"):
        data.load("fashion_mnist", "test", tmp_path / "fashion")
    head = b"\x00\x00\x08\x03" + b"".join(v.to_bytes(4, "big") for v in (12, 28, 28))
    path.write_bytes(gzip.compress(head + bytes(100)))  # whole gzip, body cut short
    with pytest.raises(DataError, match="truncated or corrupt: header says"):
        data.load("fashion_mnist", "test", tmp_path / "fashion")
    path.write_bytes(gzip.compress(head[:8] + bytes(8)))  # images of 0x0 pixels
    with pytest.raises(DataError, match="images of 0x0 pixels"):
        data.load("fashion_mnist", "test", tmp_path / "fashion")
    # Its canonical files have their own checksums, not MNIST's.
    from pixelzoo.data.mnist import FASHION_FILES, MNIST_FILES

    assert FASHION_FILES["train-images"].md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
    assert {f.md5 for f in FASHION_FILES.values()}.isdisjoint(f.md5 for f in MNIST_FILES.values())


def _cifar_with_test_batch(tmp_path, payload: bytes):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar_py(folder, _cifar_arrays(4, 2))
    (folder / "test_batch").write_bytes(payload)
    return tmp_path


@pytest.mark.parametrize(
    "case",
    ["bare-array", "scalar-labels", "string-labels", "label-999", "label-minus-1", "build-opcode",
     "random-bytes", "empty"],
)  # fmt: skip
def test_crafted_cifar_pickles_are_one_sentence(case, tmp_path):
    x = np.zeros((4, 3072), dtype=np.uint8)
    payloads = {
        "bare-array": pickle.dumps(x, protocol=2),
        "scalar-labels": pickle.dumps({b"data": x, b"labels": 3}, protocol=2),
        "string-labels": pickle.dumps({b"data": x, b"labels": ["cat"] * 4}, protocol=2),
        "label-999": pickle.dumps({b"data": x, b"labels": [0, 1, 2, 999]}, protocol=2),
        "label-minus-1": pickle.dumps({b"data": x, b"labels": [0, -1, 2, 3]}, protocol=2),
        # EMPTY_DICT, a state dict, BUILD: asks the dict to set attributes on itself.
        "build-opcode": b"\x80\x02}q\x00}q\x01X\x01\x00\x00\x00aq\x02K\x01sb.",
        "random-bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "empty": b"",
    }
    root = _cifar_with_test_batch(tmp_path, payloads[case])
    with pytest.raises(DataError, match=r"test_batch (is not a valid CIFAR-10|is corrupt)"):
        data.load("cifar10", "test", root)


def test_a_decompression_bomb_is_refused(tmp_path):
    """A PNG whose header claims 30000x30000 pixels (900 M): refused before decoding."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
    png += chunk(b"IEND", b"")
    (tmp_path / "bomb.png").write_bytes(png)
    for k in range(9):
        Image.new("L", (4, 4), k * 20).save(tmp_path / f"ok{k}.png")
    with pytest.raises(DataError, match="bomb.png is too large to decode safely"):
        for split in ("train", "valid", "test"):
            data.load("folder", split, tmp_path, size=4, channels=1)
