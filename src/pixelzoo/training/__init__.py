"""Training: the configuration, the shared trainer, launching and resuming runs, DDP.

``load_model`` and ``load_split`` read runs; they live in :mod:`pixelzoo.runs` and
are re-exported here for the README's API.
"""

from pixelzoo.runs import load_model, load_split
from pixelzoo.training.config import TrainConfig
from pixelzoo.training.evaluator import EvaluatorTraining, train_evaluator
from pixelzoo.training.launch import plan, resume_run, train, train_side_by_side, train_to_budget
from pixelzoo.training.trainer import Trainer

__all__ = [
    "EvaluatorTraining",
    "TrainConfig",
    "Trainer",
    "load_model",
    "load_split",
    "plan",
    "resume_run",
    "train",
    "train_evaluator",
    "train_side_by_side",
    "train_to_budget",
]
