"""Run folders: the :class:`Run` object, checkpoints, the metrics log and the folder lock.

Everything that reads or writes a run folder lives here, below evaluation and
training, so that both use one reader (and neither imports the other for it).
"""

from pixelzoo.runs.checkpoint import Checkpoints
from pixelzoo.runs.lock import RunLock
from pixelzoo.runs.metrics import MetricsLog, read_metrics, stopped, trained_seconds
from pixelzoo.runs.run import Run, load_model, load_split

__all__ = [
    "Checkpoints",
    "MetricsLog",
    "Run",
    "RunLock",
    "load_model",
    "load_split",
    "read_metrics",
    "stopped",
    "trained_seconds",
]
