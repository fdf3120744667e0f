"""Activations written for the kernels they compile to.

:func:`tanh` is ``torch.tanh`` when run eagerly and ``2 * sigmoid(2x) - 1`` inside a
graph that ``torch.compile`` traces. The two are the same function; what differs is the
code TorchInductor generates for them on a CPU: its vectorised ``tanh`` is several times
slower than its ``sigmoid`` (which is one ``exp`` and a division): one gate
``tanh(a) * sigmoid(b)`` of a ``[64, 256, 28, 28]`` map, forward and backward, took 20 ms
compiled, and 11 ms written with ``2 * sigmoid(2a) - 1``; the Gated PixelCNN 10x128 has
22 of them a step (2-core Xeon with AMX, bf16; the README's "What bounds the compiled
steps on AMX").

NOTE: ``2 * sigmoid(2x) - 1`` is exact to about two float32 units of 1 (``2 ** -22``) in
absolute terms, not relative ones: near zero, where ``tanh(x) ~ x``, a tiny input loses
its relative precision. For an activation whose outputs feed a convolution that is the
rounding the sum makes anyway; eager steps (and so the tests' and checkpoints' reference
figures) keep ``torch.tanh``. A compiled step differs from the eager one by fused-kernel
rounding already, which the trainer accepts (a compiled float32 step equals the eager one
to 1e-5, tested); a resumed run keeps its ``compile`` decision, so it stays exact.
"""

from __future__ import annotations

import torch


def tanh(x: torch.Tensor) -> torch.Tensor:
    """``tanh(x)``: ``torch.tanh`` eagerly, ``2 * sigmoid(2x) - 1`` when compiled."""
    if torch.compiler.is_compiling():
        return 2 * torch.sigmoid(2 * x) - 1
    return torch.tanh(x)
