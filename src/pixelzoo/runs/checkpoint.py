"""Checkpoints: safetensors tensors + JSON metadata, written atomically.

Layout of ``RUN/checkpoints/``::

    step-00001200/          one complete checkpoint
        model.safetensors   model weights
        state.safetensors   optimizer tensors and RNG states (for resuming)
        meta.json           step, the run's id, whether this step was a new best,
                            trainer counters, SHA-256 of both tensor files
    last.json               {"dir": "step-00001200", "step": 1200}   (pointer)
    best.json               {"dir": "step-00001000", "step": 1000, ...}

A checkpoint folder is written as ``.tmp-step-...`` and renamed into place when
complete, so every ``step-*`` folder is a complete checkpoint. The pointers are
written afterwards, but they are only a convenience: which checkpoint is the
last and which the best is decided from the checkpoints' own metadata (the last
is the highest step, the best the latest step that was a new best), so a process
killed between two pointer writes leaves nothing inconsistent, and
:meth:`Checkpoints.reconcile` rewrites pointers that disagree. Loading never
unpickles anything, and a pointer can only name a ``step-*`` folder inside the
run's own ``checkpoints/``.

Pruning removes only folders this run wrote: ``step-*`` folders whose metadata
carries the run's id, and the run's own temporaries (``.tmp-step-*-ID-*``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from pixelzoo.errors import CheckpointError, WriteError
from pixelzoo.utils.io import UMASK, atomic_write_json, read_json

STEP_DIR = re.compile(r"step-(\d{8})")
TENSOR_FILES = ("model.safetensors", "state.safetensors")


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


@dataclass(frozen=True)
class Entry:
    """One complete checkpoint folder and what its metadata says of it."""

    name: str
    step: int
    best: bool | None  # None: written by a pixelzoo that did not record it
    run_id: str | None  # None: written before runs had ids


class Checkpoints:
    """The ``checkpoints/`` folder of one run.

    Args:
        root: the folder (``RUN/checkpoints``).
        run_id: the run's id (``config.json``); checkpoints and temporaries of
            other runs (or of none) are never pruned. None for runs written before
            pixelzoo recorded ids: then every ``step-*`` folder counts as the run's.
    """

    def __init__(self, root: Path, run_id: str | None = None):
        self.root = Path(root)
        self.run_id = run_id

    # ------------------------------------------------------------------ reading
    def entries(self) -> list[Entry]:
        """This run's complete checkpoint folders, by step.

        Folders with unreadable metadata, symlinks, and checkpoints of another run
        (another id in their metadata) are not this run's and are skipped.
        """
        if not self.root.is_dir():
            return []
        out = []
        for d in self.root.iterdir():
            m = STEP_DIR.fullmatch(d.name)
            if not m or d.is_symlink() or not d.is_dir():
                continue
            try:
                meta = read_json(d / "meta.json")
            except (CheckpointError, OSError):
                continue
            if not isinstance(meta, dict) or meta.get("step") != int(m.group(1)):
                continue
            if self.run_id is not None and meta.get("run_id") != self.run_id:
                continue
            best = meta.get("best")
            out.append(Entry(d.name, int(m.group(1)), best if isinstance(best, bool) else None,
                             meta.get("run_id")))  # fmt: skip
        return sorted(out, key=lambda e: e.step)

    def pointer(self, which: str) -> dict | None:
        """The pointer file ``which.json`` (``last`` or ``best``), checked; None if absent."""
        path = self.root / f"{which}.json"
        if not path.exists() and not path.is_symlink():
            return None
        ptr = read_json(path)
        if not isinstance(ptr, dict) or not isinstance(ptr.get("dir"), str):
            raise CheckpointError(f"{path} is corrupt: it does not name a checkpoint folder")
        if not STEP_DIR.fullmatch(ptr["dir"]):
            raise CheckpointError(
                f"{path} names {ptr['dir']!r}, which is not a step-NNNNNNNN folder of this run; "
                "refusing to load it"
            )
        return ptr

    def resolve(self, which: str) -> str | None:
        """The folder name of checkpoint ``which`` (``last``/``best``), from the checkpoints' metadata.

        Pointer files decide only for checkpoints written before the metadata said
        which step was a best.
        """
        entries = self.entries()
        if which == "last":
            if entries:
                return entries[-1].name
        elif which == "best":
            if entries and all(e.best is not None for e in entries):
                best = [e for e in entries if e.best]
                return best[-1].name if best else None
        else:
            raise CheckpointError(f"unknown checkpoint {which!r}; use 'last' or 'best'")
        ptr = self.pointer(which)
        if ptr is not None and not (self.root / ptr["dir"]).is_dir():
            raise CheckpointError(f"{self.root}/{which}.json names {ptr['dir']}, which is missing")
        return None if ptr is None else ptr["dir"]

    def step(self, which: str) -> int | None:
        """The step of checkpoint ``which``, or None if there is none."""
        name = self.resolve(which)
        return None if name is None else int(STEP_DIR.fullmatch(name).group(1))

    def load(self, which: str = "last", with_state: bool = True):
        """``(model_state, state_tensors or None, meta)`` of checkpoint ``which`` (last/best)."""
        name = self.resolve(which)
        if name is None:
            raise CheckpointError(f"{self.root} has no {which!r} checkpoint")
        folder = self.root / name
        meta = read_json(folder / "meta.json")
        sums = meta.get("sha256") if isinstance(meta, dict) else None
        files = TENSOR_FILES if with_state else TENSOR_FILES[:1]
        if not isinstance(sums, dict) or not all(isinstance(sums.get(f), str) for f in files):
            raise CheckpointError(
                f"checkpoint {folder}/meta.json is incomplete: it has no SHA-256 of its tensor files"
            )
        loaded = []
        for f in files:
            path = folder / f
            if not path.is_file():
                raise CheckpointError(f"checkpoint file {path} is missing")
            if _sha256(path) != sums[f]:
                raise CheckpointError(f"checkpoint file {path} is corrupt (SHA-256 mismatch)")
            try:
                loaded.append(load_file(path))
            except (SafetensorError, OSError) as e:
                raise CheckpointError(f"checkpoint file {path} cannot be read ({e})") from None
        return loaded[0], (loaded[1] if with_state else None), meta

    # ------------------------------------------------------------------ writing
    def _tmp_prefix(self) -> str:
        return f".tmp-{self.run_id or 'run'}-"

    def save(
        self,
        step: int,
        model_state: dict,
        state_tensors: dict,
        meta: dict,
        *,
        best: bool,
        best_extra: dict | None = None,
    ) -> Path:
        """Write checkpoint ``step`` (a new best if ``best``), then the pointers, then prune.

        A failed write (disk full, read-only folder) removes its temporary folder and
        raises :class:`~pixelzoo.errors.WriteError` naming the last good checkpoint.
        """
        name = f"step-{step:08d}"
        final = self.root / name
        tmp = self.root / f"{self._tmp_prefix()}{name}-{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not final.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                tmp.mkdir()
                for f, tensors in zip(TENSOR_FILES, (model_state, state_tensors), strict=True):
                    save_file(
                        {k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp / f
                    )
                    os.chmod(tmp / f, 0o666 & ~UMASK)  # safetensors writes 0600
                full = {**meta, "step": step, "best": bool(best), "run_id": self.run_id}
                full["sha256"] = {f: _sha256(tmp / f) for f in TENSOR_FILES}
                for f in TENSOR_FILES:  # on disk before the folder is renamed into place
                    fd = os.open(tmp / f, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                atomic_write_json(tmp / "meta.json", full)
                os.replace(tmp, final)
            self._write_pointers(best_extra if best else None)
        except (OSError, SafetensorError, WriteError) as e:
            shutil.rmtree(tmp, ignore_errors=True)
            reason = getattr(e, "strerror", None) or str(e)
            try:
                kept = self.step("last")
            except CheckpointError:
                kept = None
            raise WriteError(
                f"could not write checkpoint {name} in {self.root} ({reason}); "
                + (
                    f"the last good checkpoint, step {kept}, is intact"
                    if kept is not None
                    else "no checkpoint was kept"
                )  # fmt: skip
            ) from None
        self.prune()
        return final

    def _write_pointers(self, best_extra: dict | None) -> None:
        last = self.resolve("last")
        if last is not None:
            atomic_write_json(self.root / "last.json", {"dir": last, "step": int(last[5:])})
        best = self.resolve("best")
        if best is not None:
            extra = best_extra if best == last and best_extra is not None else {}
            old = self._pointer_or_none("best")
            if not extra and old is not None and old.get("dir") == best:
                extra = {k: v for k, v in old.items() if k not in ("dir", "step")}
            atomic_write_json(
                self.root / "best.json", {"dir": best, "step": int(best[5:]), **extra}
            )

    def _pointer_or_none(self, which: str) -> dict | None:
        try:
            return self.pointer(which)
        except CheckpointError:
            return None

    def reconcile(self) -> list[str]:
        """Rewrite pointer files that disagree with the checkpoints' metadata; returns what changed."""
        changed = []
        for which in ("last", "best"):
            want = self.resolve(which)
            have = self._pointer_or_none(which)
            if want is not None and (have is None or have.get("dir") != want):
                changed.append(f"{which}: {None if have is None else have.get('dir')} -> {want}")
        if changed:
            self._write_pointers(None)
        return changed

    def prune(self) -> None:
        """Remove this run's checkpoints that are neither last nor best, and its temporaries."""
        if not self.root.is_dir():
            return
        keep = {self.resolve("last"), self.resolve("best")}
        for e in self.entries():  # this run's only
            if e.name not in keep:
                shutil.rmtree(self.root / e.name, ignore_errors=True)
        self.remove_temporaries()

    def remove_temporaries(self) -> None:
        """Remove temporary folders this run left (a write killed or failed half-way)."""
        if not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if d.name.startswith(self._tmp_prefix()) and d.is_dir() and not d.is_symlink():
                shutil.rmtree(d, ignore_errors=True)


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
