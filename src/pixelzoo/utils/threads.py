"""How many CPU threads a loop of many small operations uses.

AIS (a few small forward/backward passes per HMC transition) and the cached
samplers (one position of every layer per step) are loops of small operations.
With two threads each operation waits for both, so when another process keeps
one core busy every operation waits for the scheduler: measured on a 2-core AMD
EPYC (``benchmarks/threads.py``, 2 repeats, medians), two threads were 3.3x
(AIS of a digits DCGAN), 4.3x (cached PixelCNN ``binarized_mnist_cpu``, 16 images;
3.5x at 128) and 5.1x (cached Gated PixelCNN) slower than one thread with the
other core loaded, while one thread lost nothing to the load, and on an idle
machine two threads gained at most 8% (0.92-1.02x). These loops therefore run
on one thread; training, whose operations are large, keeps every thread.
"""

from __future__ import annotations

import contextlib

import torch

SMALL_OP_THREADS = 1  # read at each call: benchmarks/threads.py lifts it to compare


@contextlib.contextmanager
def at_most(n: int | None = None):
    """torch's CPU threads limited to ``n`` (default ``SMALL_OP_THREADS``) inside the
    block (never raised), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(SMALL_OP_THREADS if n is None else n, before)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
