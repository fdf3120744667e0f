"""``torch.compile`` for the training step: when it pays, and what happens when it fails.

Eager PyTorch runs a training step as one kernel per operation; every element-wise
operation (the ReLUs, the residual sums, autocast's casts, the layout changes oneDNN
asks for around each convolution) reads and writes the whole activation tensor. On a
CPU with AMX those passes cost as much as the convolutions: a PixelCNN h=96 step
spent 19% of its time in copies that are layout conversions and 25% more in
element-wise kernels (a profile, 2-core Sapphire Rapids, bf16). TorchInductor fuses
them into the convolutions' neighbours. ``benchmarks/roofline.py --compile`` times
eager and compiled steps interleaved in one run; see the README's table.

Compiling costs time once per shape: on that machine 14 s for PixelCNN h=96 and 20-45 s
for the Gated PixelCNN 10x128 (whose compiled steps are 2.2x and 2.4x faster), 181-240 s
for PixelCNN++ ``cifar10`` (1.5-1.7x faster), seconds when Inductor's on-disk cache
already holds the kernels. Some of the models' code is written for the kernels Inductor
makes of it (:func:`pixelzoo.nn.tanh`, the Gated PixelCNN's link, ``concat_elu``; the
README's "What bounds the compiled steps on AMX"). So ``compile=None`` (the default) decides
after the run's first timed steps (at step 6 of the run, resumed or not): it compiles
when the eager steps still to run would take at least :data:`WORTH_SECONDS`, on a device Inductor
can build kernels for (a C++ compiler on a CPU, Triton on a GPU), in one process
(under torchrun it stays eager unless asked). ``compile=true`` compiles from the first
step, ``false`` never. The decision goes into ``config.json`` ("chosen") and every
checkpoint when it is made, and a resumed run keeps it, so that a resumed run computes
its steps exactly as the uninterrupted run would have.

Only the loss's forward and backward are compiled (the optimizer, validation, sampling
and the EMA stay eager); the weights and checkpoints are the model's own, unchanged.
If Inductor cannot build the step (no working compiler, an unsupported operation), the
run says so in one sentence and goes on eagerly.
"""

from __future__ import annotations

import os
import shutil

import torch

# Eager training seconds still to run that make compiling worth it: PixelCNN++'s
# 1.3-1.6x after about 3 minutes of compiling repays itself after 8-16 minutes of eager
# steps; the short runs of tests and quick comparisons never wait for a compiler.
WORTH_SECONDS = 1200.0


def compiler_available(device: str) -> tuple[bool, str]:
    """Whether Inductor can build kernels for ``device``, and, if not, why."""
    if device.startswith("cuda"):
        from torch.utils._triton import has_triton

        return (True, "") if has_triton() else (False, "Triton is not installed")
    cxx = os.environ.get("CXX") or next(
        (c for c in ("g++", "c++", "clang++") if shutil.which(c)), None
    )
    return (True, "") if cxx else (False, "no C++ compiler (g++, c++ or clang++) on PATH")


def choose_compile(setting: bool | None, device: str, seconds_left: float | None,
                   distributed: bool = False) -> tuple[bool | None, str]:  # fmt: skip
    """Whether to compile the training step, and why: ``(None, why)`` while undecided.

    ``setting``: the run's ``compile``; ``seconds_left``: the eager training seconds the
    run still has to go (None: not measured yet, so an automatic choice waits);
    ``distributed``: under torchrun, where the automatic choice stays eager: two processes
    of a compiled step equal one process (a slow test), but its speed under DDP is not
    measured here; ``compile=true`` asks for it.
    """
    if setting is not None:
        return setting, "set"
    if distributed:
        return False, "default: eager under DDP (compile=true to compile)"
    ok, why = compiler_available(device)
    if not ok:
        return False, f"default: {why}"
    if seconds_left is None:
        return None, "default: eager until the first steps are timed"
    said = (f"default: about {seconds_left / 60:.1f} minutes of eager steps left "
            f"(at least {WORTH_SECONDS / 60:.0f} repay compiling)")  # fmt: skip
    return seconds_left >= WORTH_SECONDS, said


def compiled(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` compiled for training: static shapes (a run's batches all have one size,
    and a micro-batched run two), Inductor's default mode."""
    return torch.compile(module, dynamic=False)


def is_compile_failure(error: BaseException) -> bool:
    """Whether ``error`` is Inductor or Dynamo failing to build the step (not the model's
    own error, such as an out-of-range image, raised through the compiled code)."""
    return isinstance(error, torch._dynamo.exc.BackendCompilerFailed)
