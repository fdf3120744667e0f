"""Atomic writes leave either the old file or the new one, with normal permissions."""

from __future__ import annotations

import os
import stat

from pixelzoo.utils.io import atomic_write_bytes, atomic_write_json


def test_atomic_write_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_json(path, {"a": 1})
    atomic_write_json(path, {"a": 2})
    assert path.read_text().strip().endswith("}") and '"a": 2' in path.read_text()
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]


def test_atomic_write_uses_the_umask_not_0600(tmp_path):
    path = tmp_path / "x.png"
    atomic_write_bytes(path, b"data")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
