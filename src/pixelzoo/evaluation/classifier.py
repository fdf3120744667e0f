"""The evaluator: a classifier trained by pixelzoo on labelled digits or MNIST.

FID, KID and the Inception Score need a feature network that knows the images
being judged. Inception-v3 features mean little on 8x8 digits or 28x28 MNIST, so
for digit-like data these metrics use a small convolutional classifier trained on
the labelled training set, as the MNIST studies do (the stacked-MNIST mode count
of Metz et al. 2017 and Srivastava et al. 2017 classifies each channel with an
MNIST classifier). The same network counts modes (``evaluation/modes.py``).

An evaluator is stored as a run, like a generative model::

    RUN/config.json          {"kind": "evaluator", "evaluator": {...}, "train": {...}}
    RUN/metrics.jsonl        loss and accuracy per epoch; test accuracy at the end
    RUN/checkpoints/         safetensors weights + JSON metadata (best validation accuracy)

Network: three stages of two 3x3 convolutions (width, 2 width, 4 width maps) with
2x2 max pooling between them, a ``features``-wide ReLU layer on the flattened
maps - the feature vector of FID/KID - then dropout and the class logits (the
Inception Score's ``p(y | x)``). No batch norm, so a feature vector depends on its
image alone, never on the batch it was computed in.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from pixelzoo import data as datasets
from pixelzoo.data.base import check_image_set, to_unit
from pixelzoo.errors import CheckpointError, ConfigError, DataError, InputError
from pixelzoo.training import checkpoint
from pixelzoo.training.logging import MetricsLog
from pixelzoo.utils.io import atomic_write_json


@dataclass
class EvaluatorSpec:
    """What rebuilds an evaluator: its input images, classes and widths."""

    image_shape: tuple[int, int, int]
    levels: int
    classes: int
    width: int = 32
    features: int = 128
    dropout: float = 0.3


class DigitClassifier(nn.Module):
    """Features (``forward``) and class logits (``logits``) of images in [-1, 1]."""

    def __init__(self, spec: EvaluatorSpec):
        super().__init__()
        c, h, w = spec.image_shape
        if min(h, w) < 4:
            raise ConfigError(f"the evaluator needs images of at least 4x4, got {h}x{w}")
        self.spec = spec
        self.num_features = spec.features
        layers: list[nn.Module] = []
        in_maps = c
        for stage in range(3):
            maps = spec.width * 2**stage
            if stage:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers += [
                nn.Conv2d(in_maps, maps, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(maps, maps, 3, padding=1),
                nn.ReLU(),
            ]
            in_maps = maps
        self.body = nn.Sequential(*layers)
        side = (-(-h // 4), -(-w // 4))  # two ceil-mode 2x2 pools
        self.embed = nn.Linear(in_maps * side[0] * side[1], spec.features)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.features, spec.classes)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, features]`` feature vectors (after the ReLU) of images ``u`` in [-1, 1]."""
        return F.relu(self.embed(self.body(u).flatten(1)))

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, classes]`` class logits."""
        return self.head(self.dropout(self.forward(u)))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, levels: int, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class ``[N]`` of integer images ``x`` with ``levels`` values."""
        check_image_set(x, "images")
        if tuple(x.shape[1:]) != tuple(self.spec.image_shape):
            raise InputError(
                f"the evaluator classifies images {list(self.spec.image_shape)}, "
                f"got {list(x.shape[1:])}"
            )
        was_training = self.training
        self.eval()
        try:
            device = next(self.parameters()).device
            out = [
                self.logits(to_unit(b, levels).to(device)).argmax(1).cpu()
                for b in x.split(batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def accuracy(net: DigitClassifier, dataset) -> float:
    """Fraction of ``dataset``'s images classified as their label."""
    pred = net.predict(dataset.get_batch(torch.arange(len(dataset)))[0], dataset.levels)
    return float((pred == dataset.labels).double().mean())


@dataclass
class EvaluatorTraining:
    """How an evaluator is trained (saved in its run's config.json)."""

    data: str = "digits"
    data_dir: str | None = None
    data_options: dict | None = None
    epochs: int | None = None  # None: 40 on the digits, else 4
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


def _labelled(name: str, split: str, cfg: EvaluatorTraining):
    ds = datasets.load(name, split, cfg.data_dir, **(cfg.data_options or {}))
    if ds.labels is None:
        hint = (
            " (for binarized MNIST, train on 'mnist' with data.binarize=dynamic)"
            if name == "binarized_mnist"
            else ""
        )
        raise DataError(
            f"dataset {name!r} has no labels, so no classifier can be trained on it{hint}"
        )
    return ds


def train_evaluator(
    cfg: EvaluatorTraining, run_dir, *, progress: bool = True, splits: dict | None = None
) -> dict:
    """Train an evaluator classifier into ``run_dir``; returns its validation and test accuracy.

    The checkpoint kept is the one with the best validation accuracy. ``splits``
    (``{"train", "valid", "test"}`` -> labelled :class:`ImageDataset`) replaces
    loading ``cfg.data``: for data built in memory.
    """
    run_dir = Path(run_dir)
    if (run_dir / "config.json").exists():
        raise ConfigError(f"{run_dir} already holds a run; choose another --out")
    if splits is None:
        splits = {s: _labelled(cfg.data, s, cfg) for s in ("test", "valid", "train")}  # small first
    train_set, valid_set, test_set = splits["train"], splits["valid"], splits["test"]
    epochs = cfg.epochs or (40 if cfg.data == "digits" else 4)
    spec = EvaluatorSpec(
        train_set.image_shape,
        train_set.levels,
        train_set.num_classes or int(train_set.labels.max()) + 1,
    )
    torch.manual_seed(cfg.seed)
    net = DigitClassifier(spec)
    g = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    atomic_write_json(
        run_dir / "config.json",
        {
            "kind": "evaluator",
            "evaluator": asdict(spec),
            "train": {**asdict(cfg), "epochs": epochs},
        },
    )
    log = MetricsLog(run_dir, enabled=True)
    best, elapsed = -1.0, 0.0
    try:
        for epoch in tqdm(
            range(1, epochs + 1), desc="evaluator", unit="epoch", disable=not progress
        ):
            net.train()
            t0, total, seen = time.perf_counter(), 0.0, 0
            for idx in torch.randperm(len(train_set), generator=g).split(cfg.batch_size):
                x, y = train_set.get_batch(idx, generator=g)
                loss = F.cross_entropy(net.logits(to_unit(x, train_set.levels)), y)
                if not torch.isfinite(loss):
                    raise ConfigError(f"the evaluator's loss became {float(loss)}; try a lower lr")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total, seen = total + loss.item() * len(idx), seen + len(idx)
            elapsed += time.perf_counter() - t0
            acc = accuracy(net, valid_set)
            log.write(
                {
                    "split": "train",
                    "step": epoch * steps_per_epoch,
                    "epoch": epoch,
                    "loss": total / seen,
                    "train_seconds": elapsed,
                }
            )
            log.write(
                {"split": "valid", "step": epoch * steps_per_epoch, "epoch": epoch, "accuracy": acc}
            )
            if acc > best:
                best = acc
                checkpoint.save(
                    run_dir / "checkpoints",
                    epoch * steps_per_epoch,
                    net.state_dict(),
                    {},
                    {"epoch": epoch, "valid_accuracy": acc},
                    {"last": {}, "best": {"valid_accuracy": acc}},
                )
        net = load_evaluator(run_dir)
        result = {
            "valid_accuracy": best,
            "test_accuracy": accuracy(net, test_set),
            "epochs": epochs,
        }
        log.write(
            {"split": "test", "step": epochs * steps_per_epoch, "accuracy": result["test_accuracy"]}
        )
        return result
    finally:
        log.close()


def load_evaluator(run_dir, device: str = "cpu") -> DigitClassifier:
    """The evaluator classifier stored in ``run_dir`` (see :func:`train_evaluator`)."""
    from pixelzoo.training.run import read_config

    cfg = read_config(run_dir)
    if cfg.get("kind") != "evaluator":
        raise CheckpointError(
            f"{run_dir} is a generative-model run, not an evaluator (make one with "
            "`pixelzoo train-evaluator`)"
        )
    spec = cfg["evaluator"]
    net = DigitClassifier(EvaluatorSpec(**{**spec, "image_shape": tuple(spec["image_shape"])}))
    root = Path(run_dir) / "checkpoints"
    weights, _, _ = checkpoint.load(root, "best", with_state=False)
    checkpoint.load_weights(net, weights, root)
    return net.to(device).eval()
