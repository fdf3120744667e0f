"""Checkpoints: safetensors tensors + JSON metadata, written atomically.

Layout of ``RUN/checkpoints/``::

    step-00001200/          one complete checkpoint
        model.safetensors   model weights
        state.safetensors   optimizer tensors and RNG states (for resuming)
        meta.json           step, epoch, optimizer hyper-parameters, trainer
                            counters, SHA-256 of both tensor files
    last.json               {"dir": "step-00001200"}   (pointer, replaced atomically)
    best.json               {"dir": "step-00001000", "valid_nats": ...}

A checkpoint folder is written as ``.tmp-step-...`` and renamed into place when
complete; the pointers are replaced only afterwards. A run killed at any moment
therefore always has a complete ``last`` checkpoint (or none yet), and loading
never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pixelzoo.errors import CheckpointError
from pixelzoo.utils.io import atomic_write_json


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def optimizer_to_flat(optimizer: torch.optim.Optimizer, name: str) -> tuple[dict, dict]:
    """Split ``optimizer.state_dict()`` into tensors ``optim.NAME.ID.KEY`` (for safetensors) and JSON."""
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{name}.{pid}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(
    optimizer: torch.optim.Optimizer, tensors: dict, meta: dict, name: str
) -> None:
    """Inverse of :func:`optimizer_to_flat` for the optimizer saved as ``name``."""
    state: dict[int, dict] = {}
    prefix = f"optim.{name}."
    for key, v in tensors.items():
        if key.startswith(prefix):
            pid, k = key[len(prefix) :].split(".", 1)
            state.setdefault(int(pid), {})[k] = v
    for key, v in meta["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save(
    ckpt_root: Path,
    step: int,
    model_state: dict,
    state_tensors: dict,
    meta: dict,
    pointers: dict[str, dict],
) -> Path:
    """Write checkpoint ``step`` and then point each name in ``pointers`` at it.

    ``pointers`` maps ``"last"``/``"best"`` to extra JSON fields for that pointer.
    Checkpoint folders no pointer refers to any more are removed.
    """
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:08d}"
    final = ckpt_root / name
    if not final.exists():
        tmp = ckpt_root / f".tmp-{name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in model_state.items()},
            tmp / "model.safetensors",
        )
        save_file(state_tensors, tmp / "state.safetensors")
        meta = {
            **meta,
            "sha256": {f: _sha256(tmp / f) for f in ("model.safetensors", "state.safetensors")},
        }
        atomic_write_json(tmp / "meta.json", meta)
        os.replace(tmp, final)
    for pointer, extra in pointers.items():
        atomic_write_json(ckpt_root / f"{pointer}.json", {"dir": name, **extra})
    _prune(ckpt_root)
    return final


def _prune(ckpt_root: Path) -> None:
    keep = set()
    for pointer in ("last", "best"):
        p = ckpt_root / f"{pointer}.json"
        if p.exists():
            keep.add(json.loads(p.read_text())["dir"])
    for d in ckpt_root.iterdir():
        if d.is_dir() and (
            d.name.startswith(".tmp-") or (d.name.startswith("step-") and d.name not in keep)
        ):
            shutil.rmtree(d, ignore_errors=True)


def pointer(ckpt_root: Path, which: str) -> dict | None:
    p = ckpt_root / f"{which}.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"{p} is corrupt (not JSON)") from None


def load(ckpt_root: Path, which: str = "last", with_state: bool = True):
    """``(model_state, state_tensors or None, meta)`` of checkpoint ``which`` (last/best)."""
    ptr = pointer(ckpt_root, which)
    if ptr is None:
        raise CheckpointError(f"{ckpt_root} has no {which!r} checkpoint")
    folder = ckpt_root / ptr["dir"]
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {folder} is missing meta.json") from None
    except json.JSONDecodeError:
        raise CheckpointError(f"checkpoint {folder}/meta.json is corrupt (not JSON)") from None
    files = ["model.safetensors"] + (["state.safetensors"] if with_state else [])
    loaded = []
    for f in files:
        path = folder / f
        if not path.exists():
            raise CheckpointError(f"checkpoint file {path} is missing")
        if _sha256(path) != meta["sha256"][f]:
            raise CheckpointError(f"checkpoint file {path} is corrupt (SHA-256 mismatch)")
        try:
            loaded.append(load_file(path))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"checkpoint file {path} cannot be read ({e})") from None
    return loaded[0], (loaded[1] if with_state else None), meta


def load_weights(model: torch.nn.Module, weights: dict, where: Path) -> None:
    """``model.load_state_dict`` with a one-sentence error when the shapes disagree."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(
            f"checkpoint in {where} does not match the model described by its run's "
            f"config.json ({first})"
        ) from None
