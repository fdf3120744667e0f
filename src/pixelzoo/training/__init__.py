"""Training, checkpoints, resuming and distributed runs."""

from pixelzoo.training.config import TrainConfig
from pixelzoo.training.run import load_model, load_split, read_config
from pixelzoo.training.trainer import Trainer, train

__all__ = ["TrainConfig", "Trainer", "load_model", "load_split", "read_config", "train"]
