"""Errors a user can act on.

Every failure caused by input (a wrong shape, a missing file, an unknown name, a
diverging run) is raised as a :class:`PixelzooError` whose message is one sentence
naming the input and what was expected. The CLI prints that sentence and exits
with status 2 instead of showing a traceback.
"""


class PixelzooError(Exception):
    """Base class: a problem with the user's input, data, or run."""


class ConfigError(PixelzooError, ValueError):
    """Unknown model/dataset/preset name, unknown override, invalid value."""


class DataError(PixelzooError):
    """A dataset file is missing, corrupt, truncated, or cannot be downloaded."""


class InputError(PixelzooError, ValueError):
    """A tensor handed to a model has the wrong shape, dtype or value range."""


class CheckpointError(PixelzooError):
    """A run folder or checkpoint is missing or corrupt."""


class WriteError(PixelzooError):
    """A file could not be written (disk full, a read-only folder); nothing half-written is left."""


class RunLocked(PixelzooError):
    """Another process holds the run folder (two trainers must never share one)."""


class TrainingDiverged(PixelzooError):
    """The loss (or the weights) became NaN/inf; the last good checkpoint is kept."""
