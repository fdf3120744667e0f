"""Helpers shared by several test files (tests never import each other)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import torch

from pixelzoo.runs import read_metrics
from pixelzoo.training import TrainConfig

# A small PixelCNN on the digits, and the same model and logging as CLI arguments.
SMALL = {"hidden": 8, "blocks": 2, "out_hidden": 16}
SMALL_CLI = ["--no-progress"] + [
    a for k, v in {**SMALL, "log_every": 1, "samples": 0}.items() for a in ("--set", f"{k}={v}")
]


def small_cfg(**kw) -> TrainConfig:
    """The small PixelCNN's training settings (batch 32, a log record every step)."""
    base = dict(overrides=dict(SMALL), batch_size=32, log_every=1, ckpt_every=7, samples=0)
    base.update(kw)
    return TrainConfig(**base)


def losses(run_dir) -> list[tuple[int, float]]:
    """``(step, loss)`` of every training record of a run."""
    return [(r["step"], r["loss"]) for r in read_metrics(run_dir) if r["split"] == "train"]


def cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    """The CLI in this process (faster than :func:`pz` where no process is at stake)."""
    import contextlib
    import io

    from pixelzoo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, result.stderr[-3000:]
    return result


def pz(*args, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """The CLI in a real process; with ``check``, it must succeed."""
    out = subprocess.run(
        [sys.executable, "-m", "pixelzoo", *map(str, args)], capture_output=True, text=True, **kw
    )
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def torchrun(*args, processes: int = 2) -> subprocess.CompletedProcess:
    """``pixelzoo ARGS`` under torchrun: ``processes`` gloo processes of one thread each."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    return subprocess.run(
        [*launcher, f"--master_port={port}", "-m", "pixelzoo", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def cond_for(model, n: int, seed: int = 0, value=None):
    """A ``cond`` for ``n`` images: random per image, or ``value`` (one label / one draw) for all."""
    g = torch.Generator().manual_seed(seed)
    if model.cond_kind is None:
        return None
    if model.cond_kind == "class":
        if value is not None:
            return torch.full((n,), value, dtype=torch.long)
        return torch.randint(0, model.num_classes, (n,), generator=g)
    if value is not None:
        return torch.randn(1, *model.cond_shape, generator=g).expand(n, *model.cond_shape)
    return torch.randn(n, *model.cond_shape, generator=g)
