"""Training the evaluator classifier (``pixelzoo train-evaluator``) with the shared trainer.

The classifier behind FID/KID/IS and the mode counts
(:class:`~pixelzoo.evaluation.classifier.DigitClassifier`) trains like any
model: the same :class:`~pixelzoo.training.trainer.Trainer` loop, checkpoints,
metrics log, run-folder lock and clean-up. What differs is said here:
validation is classification accuracy and cross-entropy, the kept (``best``)
checkpoint is the one with the lowest validation cross-entropy (accuracy ties
early on a clean validation set, so it would keep an undertrained network), the learning rate follows a cosine to 0
over the run (no clipping, no sample grids), and when training ends the best
checkpoint's test accuracy is measured and logged.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch

from pixelzoo import data as datasets
from pixelzoo.errors import DataError
from pixelzoo.evaluation.classifier import DigitClassifier, EvaluatorSpec, accuracy, classify
from pixelzoo.runs.checkpoint import load_weights
from pixelzoo.training.config import TrainConfig
from pixelzoo.training.launch import data_record, launch
from pixelzoo.training.trainer import Trainer, fast_bfloat16

# Epochs of the colour evaluator. Measured on cifar10-jpeg (2 threads of a 2-core AMD
# EPYC, bf16, batch 128): 1,148 images/s, 12 epochs in 6.5 minutes of steps (8 with the
# validations), test accuracy 81.8% on the 10,000 test images (see the README).
COLOUR_EPOCHS = 12


@dataclass
class EvaluatorTraining:
    """How an evaluator is trained (saved, as training settings, in its run's config.json).

    Args:
        data: a labelled dataset (digits, mnist, ...).
        data_dir: the folder holding its files (None: the download cache).
        data_options: dataset options, e.g. {"binarize": "dynamic"}.
        epochs: training epochs; None: 40 on the digits, COLOUR_EPOCHS on colour
            images, else 4.
        minutes: also stop after this many minutes of training (the cosine schedule
            is planned over the epochs, so a run cut short ends above the lowest
            learning rate); None: no time limit.
        width: maps of the first stage (then 2x and 4x); None: 32.
        augment: random flips and shifts while training; None: on for colour images
            (3 channels), off for grey digits.
        batchnorm: batch norm after every convolution; None: on for colour images.
        amp: bfloat16 autocast for the training steps; None: on for colour images
            where bfloat16 is fast (CUDA, or a CPU with AVX512-BF16, where it doubles
            the step rate), else off.
        batch_size: images per step.
        lr: Adam's learning rate at the start of the cosine schedule.
        seed: sets every random number generator of the run.
        device: "auto" (a GPU if there is one), "cpu", "cuda", "cuda:N".
    """

    data: str = "digits"
    data_dir: str | None = None
    data_options: dict | None = None
    epochs: int | None = None
    minutes: float | None = None
    width: int | None = None
    augment: bool | None = None
    batchnorm: bool | None = None
    amp: bool | None = None
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"

    def train_config(self, colour: bool = False) -> TrainConfig:
        """The trainer's settings for this evaluator (``colour``: of 3-channel images)."""
        default_epochs = 40 if self.data == "digits" else COLOUR_EPOCHS if colour else 4
        amp = self.amp if self.amp is not None else colour and fast_bfloat16(self.device)
        return TrainConfig(
            model="evaluator",
            data=self.data,
            data_dir=self.data_dir,
            data_options=dict(self.data_options or {}),
            epochs=self.epochs or default_epochs,
            minutes=self.minutes,
            amp=amp,
            batch_size=self.batch_size,
            lr=self.lr,
            lr_schedule="cosine",
            betas=(0.9, 0.999),
            grad_clip=0.0,
            ema=0.0,
            seed=self.seed,
            device=self.device,
            samples=0,
            eval_batch_size=1000,
            ckpt_every=10**9,  # a checkpoint at every validation is enough
        ).validate()


class EvaluatorTrainer(Trainer):
    """The trainer with classification accuracy for validation and a test accuracy at the end."""

    best_key = "loss"

    def __init__(self, *args, test_set, **kwargs):
        self.test_set = test_set
        self.test_accuracy: float | None = None
        self.best_accuracy: float | None = None
        super().__init__(*args, **kwargs)

    def model_spec(self) -> dict:
        return {"name": "evaluator", **self.model.spec_dict()}

    def validate(self) -> dict:
        return classify(self.model, self.valid_set)

    def write_samples(self) -> None:
        pass  # a classifier draws no images

    def after_training(self) -> None:
        """The best checkpoint's validation and test accuracy; the test one logged last."""
        if not self.dist.is_main:
            return
        net = DigitClassifier(self.model.spec)
        weights, _, _ = self.checkpoints.load("best", with_state=False)
        load_weights(net, weights, self.ckpt_root)
        net = net.to(self.device)
        self.best_accuracy = accuracy(net, self.valid_set)
        self.test_accuracy = accuracy(net, self.test_set)
        self.log.write({"split": "test", "step": self.step, "accuracy": self.test_accuracy})


def _labelled(cfg: EvaluatorTraining, split: str):
    ds = datasets.load(cfg.data, split, cfg.data_dir, **(cfg.data_options or {}))
    if ds.labels is None:
        hint = (
            " (for binarized MNIST, train on 'mnist' with data.binarize=dynamic)"
            if cfg.data == "binarized_mnist"
            else ""
        )
        raise DataError(
            f"dataset {cfg.data!r} has no labels, so no classifier can be trained on it{hint}"
        )
    return ds


def train_evaluator(
    cfg: EvaluatorTraining, run_dir, *, progress: bool = True, splits: dict | None = None
) -> dict:
    """Train an evaluator classifier into ``run_dir``; returns its validation and test accuracy.

    The checkpoint kept is the one with the lowest validation cross-entropy. ``splits``
    (``{"train", "valid", "test"}`` -> labelled :class:`ImageDataset`) replaces
    loading ``cfg.data``: for data built in memory.
    """
    made = {}

    def make():
        parts = splits or {s: _labelled(cfg, s) for s in ("test", "valid", "train")}
        train_set, valid_set = parts["train"], parts["valid"]
        colour = train_set.image_shape[0] == 3
        train_cfg = made["config"] = cfg.train_config(colour)
        spec = EvaluatorSpec(
            tuple(train_set.image_shape),
            train_set.levels,
            train_set.num_classes or int(train_set.labels.max()) + 1,
            width=cfg.width or 32,
            augment=colour if cfg.augment is None else cfg.augment,
            batchnorm=colour if cfg.batchnorm is None else cfg.batchnorm,
        )
        torch.manual_seed(train_cfg.seed)
        net = DigitClassifier(spec)
        train_cfg.log_every = max(1, len(train_set) // train_cfg.batch_size)  # once an epoch
        record = {
            "kind": "evaluator",
            "run_id": uuid.uuid4().hex[:16],
            "evaluator": net.spec_dict(),
            "train": dataclasses.asdict(train_cfg),
            "data": data_record(train_set, valid_set),
        }
        made["trainer"] = EvaluatorTrainer(
            net, train_set, valid_set, train_cfg, run_dir, record=record, progress=progress,
            test_set=parts["test"],
        )  # fmt: skip
        return made["trainer"]

    launch(Path(run_dir), make, fresh=True, resume_hint=False)
    trainer = made["trainer"]
    return {
        "valid_accuracy": trainer.best_accuracy,
        "test_accuracy": trainer.test_accuracy,
        "epochs": made["config"].epochs,
    }
