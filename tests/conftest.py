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
