"""Ctrl-C held while heavy packages are imported, then raised as an ordinary KeyboardInterrupt.

A KeyboardInterrupt raised while torch, numpy, scipy or scikit-learn are being imported is not
an ordinary exception. Measured over 40 interrupts of ``pixelzoo train`` 0.2-2.2 s after its
start, it was reported as one line 31 times, but it also aborted the process (std::terminate in
torch's C++ code), was lost (the run went on to its end), left numpy half-imported (ImportError,
RecursionError later), or killed the process by SIGINT after the line was printed (CPython
remembers a KeyboardInterrupt that left embedded ``PyRun_*`` code and re-raises the signal at
exit). Recording the signal during the import and raising it after makes every interrupt the
ordinary one: the CLI prints one line and exits 130.

The command line imports the library this way (``pixelzoo.cli``); the few packages imported
lazily at first use (scikit-learn for the digits, TensorBoard for the metrics, torch._dynamo,
which ``torch.optim`` imports on its first construction) go through :func:`import_held`.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
import sys
import threading
from types import ModuleType


@contextlib.contextmanager
def ctrl_c_held():
    """Hold SIGINT until the block is over; if it came, raise KeyboardInterrupt then.

    Outside the main thread (where handlers cannot be set) the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: pending.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pending:
        raise KeyboardInterrupt


def import_held(name: str) -> ModuleType:
    """``importlib.import_module(name)`` with Ctrl-C held (a no-op cost once it is loaded)."""
    if sys.modules.get(name) is not None:
        return sys.modules[name]
    with ctrl_c_held():  # a None entry (a module blocked) raises ImportError here
        return importlib.import_module(name)
