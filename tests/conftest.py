"""Shared fixtures: the reference data in ../shared/data and tiny helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(
    os.environ.get("PIXELZOO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def shared(name: str) -> Path:
    """Folder of a reference dataset, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"reference data {path} is absent (see ../shared/data/README.md)")
    return path


@pytest.fixture(autouse=True, scope="session")
def _data_cache(tmp_path_factory):
    """Downloads and decoded-image caches of the test session go to a folder of its own."""
    before = os.environ.get("PIXELZOO_DATA")
    os.environ["PIXELZOO_DATA"] = str(tmp_path_factory.mktemp("pixelzoo-data"))
    yield
    if before is None:
        del os.environ["PIXELZOO_DATA"]
    else:
        os.environ["PIXELZOO_DATA"] = before


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)
    yield


@pytest.fixture
def bmnist_dir() -> Path:
    return shared("binarized_mnist")


@pytest.fixture
def mnist_dir() -> Path:
    return shared("mnist")


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
    """A random Inception-v3 saved the way pytorch-fid's file is (a plain state dict): the
    network and the file's path (the real weights are never downloaded by the tests)."""
    from pixelzoo.evaluation.inception import WEIGHTS_NAME, InceptionV3

    torch.manual_seed(0)
    net = InceptionV3().eval()
    path = tmp_path_factory.mktemp("inception") / WEIGHTS_NAME
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return net, path
