"""A run folder as one object: its ``config.json`` read once, and everything it says.

A run folder holds a trained generative model or an evaluator classifier::

    RUN/config.json      what the run is: training settings, model spec, data, id
    RUN/metrics.jsonl    one JSON record per log step and per validation
    RUN/checkpoints/     safetensors weights + JSON metadata (runs/checkpoint.py)
    RUN/samples/, tb/    sample grids and TensorBoard scalars
    RUN/.lock            held by the process training in it (runs/lock.py)

A pretrained folder (:mod:`pixelzoo.models.pretrained`: config.json with a
"pretrained" object, model.safetensors, README.md) is read as a run with one set
of weights and no checkpoints; its training settings are optional.

Every reader of a run (evaluate, sample, compare, the trainer's resume) goes
through :class:`Run`, so the file is parsed and checked in one place, and a
malformed one is one sentence naming what is wrong.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file

from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import CheckpointError, ConfigError
from pixelzoo.models.pretrained import WEIGHTS, weights_digest
from pixelzoo.runs.checkpoint import Checkpoints, load_weights
from pixelzoo.runs.metrics import read_metrics
from pixelzoo.utils.io import read_json

KINDS = ("model", "evaluator")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class Run:
    """The run in folder ``path`` (raises :class:`CheckpointError` if there is none, or it is malformed)."""

    def __init__(self, path, data_dir=None):
        """``data_dir``: read the run's dataset from this folder instead of the one its
        config records (a run trained on another machine, or from another folder)."""
        self.path = Path(path)
        self._data_dir = None if data_dir is None else str(data_dir)
        if not self.path.is_dir():
            raise CheckpointError(f"run folder {self.path} does not exist")
        file = self.path / "config.json"
        if not file.exists():
            raise CheckpointError(f"{self.path} is not a pixelzoo run (no config.json)")
        self.config = read_json(file)
        self._check(file)

    def _check(self, file: Path) -> None:
        cfg = self.config

        def bad(what: str):
            return CheckpointError(f"{file} is not a valid run configuration: {what}")

        if not isinstance(cfg, dict):
            raise bad("it is not a JSON object")
        if cfg.get("kind", "model") not in KINDS:
            raise bad(f"kind must be one of {', '.join(KINDS)}, got {cfg.get('kind')!r}")
        if not isinstance(cfg.get("pretrained", {}), dict):
            raise bad("'pretrained' must be an object")
        train = cfg.get("train", {} if self.is_pretrained else None)
        if not isinstance(train, dict):
            raise bad("it has no 'train' settings")
        if train or not self.is_pretrained:  # a pretrained folder may record no training
            if not isinstance(train.get("data"), str):
                raise bad("'train.data' must name a dataset")
            if not _is_int(train.get("batch_size")) or train["batch_size"] < 1:
                raise bad("'train.batch_size' must be a positive integer")
        if not isinstance(train.get("data_dir"), (str, type(None))):
            raise bad("'train.data_dir' must be a folder name or null")
        if not isinstance(train.get("data_options") or {}, dict):
            raise bad("'train.data_options' must be an object")
        spec = cfg.get("evaluator" if self.kind == "evaluator" else "model")
        if not isinstance(spec, dict):
            raise bad(f"it has no '{'evaluator' if self.kind == 'evaluator' else 'model'}' spec")
        shape = spec.get("image_shape")
        if not (
            isinstance(shape, list) and len(shape) == 3 and all(_is_int(s) and s > 0 for s in shape)
        ):
            raise bad("'image_shape' must be three positive integers [C, H, W]")
        if not _is_int(spec.get("levels")) or not 2 <= spec["levels"] <= 256:
            raise bad("'levels' must be an integer in 2..256")
        if self.kind == "model":
            if not isinstance(spec.get("name"), str) or not isinstance(spec.get("config"), dict):
                raise bad("'model' needs a 'name' and a 'config' object")
        elif not _is_int(spec.get("classes")) or spec["classes"] < 2:
            raise bad("'evaluator.classes' must be an integer of at least 2")

    # ------------------------------------------------------------------ what it is
    @property
    def kind(self) -> str:
        """``"model"`` (a generative model) or ``"evaluator"`` (the classifier behind FID)."""
        return self.config.get("kind", "model")

    @property
    def is_pretrained(self) -> bool:
        """Whether this is a pretrained folder (weights in model.safetensors, no checkpoints)."""
        return "pretrained" in self.config

    @property
    def run_id(self) -> str | None:
        return self.config.get("run_id")

    @property
    def label(self) -> str:
        return self.path.name

    @property
    def train(self) -> dict:
        """The saved training settings (``TrainConfig`` as a dict; empty for a pretrained
        folder saved without a run)."""
        return self.config.get("train") or {}

    @property
    def model_spec(self) -> dict:
        """``{"name", "image_shape", "levels", "config"}``: what rebuilds the model."""
        if self.kind != "model":
            raise CheckpointError(
                f"{self.path} is an evaluator classifier (pixelzoo train-evaluator), not a "
                "generative model"
            )
        return self.config["model"]

    @property
    def evaluator_spec(self) -> dict:
        if self.kind != "evaluator":
            raise CheckpointError(
                f"{self.path} is a generative-model run, not an evaluator (make one with "
                "`pixelzoo train-evaluator`)"
            )
        return self.config["evaluator"]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        spec = self.config["evaluator" if self.kind == "evaluator" else "model"]
        return tuple(spec["image_shape"])

    @property
    def levels(self) -> int:
        return self.config["evaluator" if self.kind == "evaluator" else "model"]["levels"]

    @property
    def data_name(self) -> str | None:
        return self.train.get("data")

    @property
    def data_dir(self) -> str | None:
        return self._data_dir or self.train.get("data_dir")

    @property
    def data_options(self) -> dict:
        return dict(self.train.get("data_options") or {})

    @property
    def classes(self) -> tuple[str, ...] | None:
        """The data's class names in label order (label k is ``classes[k]``), where it names them."""
        names = (self.config.get("data") or {}).get("classes")
        return tuple(str(c) for c in names) if names else None

    def class_index(self, which: str | int | None) -> int | None:
        """The label of a class given by name (``airplane``) or number (``0``); None stays None."""
        if which is None or isinstance(which, int):
            return which
        names = self.classes or ()
        if which in names:
            return names.index(which)
        if which.isdigit():
            return int(which)
        valid = f"; its classes: {', '.join(names)}" if names else " (its data names no classes)"
        raise ConfigError(f"run {self.path} has no class {which!r}{valid}")

    def dataset_identity(self) -> tuple:
        """What makes two runs' data the same data: name, options, image space, and for
        image folders the folder itself (other datasets are identified by their files'
        checksums, wherever they lie)."""
        where = None
        if self.data_name == "folder" and self.data_dir is not None:
            where = os.path.realpath(self.data_dir)
        options = json.dumps(self.data_options, sort_keys=True)
        return (self.data_name, options, where, self.image_shape, self.levels)

    def describe_data(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.data_options.items()))
        where = f" in {self.data_dir}" if self.data_name == "folder" else ""
        c, h, w = self.image_shape
        return (
            f"{self.data_name}{where}{f' ({opts})' if opts else ''} {c}x{h}x{w} with "
            f"{self.levels} levels"
        )

    # ------------------------------------------------------------------ files
    @property
    def checkpoints(self) -> Checkpoints:
        return Checkpoints(self.path / "checkpoints", self.run_id)

    def metrics(self) -> list[dict]:
        """The records of ``metrics.jsonl`` (empty if the run wrote none)."""
        return read_metrics(self.path)

    def training_record(self) -> dict:
        """What the metrics say of the training: steps, time, throughput, the curves."""
        records = self.metrics()
        train = [r for r in records if r.get("split") == "train"]
        valid = [r for r in records if r.get("split") == "valid" and "nats" in r]
        seconds = max((r.get("train_seconds") or 0.0 for r in records), default=0.0)
        # The wall time (validation, samples, checkpoints included) of runs that count it.
        wall = max((r.get("wall_seconds") or 0.0 for r in records), default=0.0)
        validating = max((r.get("valid_seconds") or 0.0 for r in records), default=0.0)
        steps = max((r["step"] for r in train), default=0)
        batch = self.train.get("batch_size") or 0
        return {
            "steps": steps,
            "train_seconds": seconds or None,
            "wall_seconds": wall or None,
            "valid_seconds": validating if wall else None,
            "train_images_per_s": steps * batch / seconds if seconds else None,
            "curve_train": [(r.get("train_seconds"), r) for r in train],
            "curve_valid": [(r.get("train_seconds"), r["nats"]) for r in valid],
        }

    def weights(self, which: str = "best") -> dict:
        """The model weights of checkpoint ``which`` ("best" falls back to "last" when no
        checkpoint was ever a best, as in a GAN run). A pretrained folder has one set of
        weights, model.safetensors, checked against the SHA-256 its config records."""
        if self.is_pretrained:
            return self._pretrained_weights()
        ckpts = self.checkpoints
        if which == "best" and ckpts.resolve("best") is None:
            which = "last"
        weights, _, _ = ckpts.load(which, with_state=False)
        return weights

    def _pretrained_weights(self) -> dict:
        path = self.path / WEIGHTS
        if not path.is_file():
            raise CheckpointError(f"pretrained folder {self.path} has no {WEIGHTS}")
        expected = self.config["pretrained"].get("weights_sha256")
        if expected is not None and weights_digest(path) != expected:
            raise CheckpointError(f"{path} is corrupt (SHA-256 mismatch with its config.json)")
        try:
            return load_file(path)
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{path} cannot be read ({e})") from None

    def load_model(self, which: str = "best", device: str = "cpu"):
        """The run's model with the weights of checkpoint ``which``, in eval mode."""
        spec = self.model_spec
        model = models.build(spec["name"], spec["image_shape"], spec["levels"], **spec["config"])
        where = self.path if self.is_pretrained else self.checkpoints.root
        load_weights(model, self.weights(which), where)
        return model.to(device).eval()

    def load_split(self, split: str, data_dir=None, dataset: str | None = None):
        """Split ``split`` of the run's dataset (or of ``dataset``, with the run's options)."""
        name = dataset or self.data_name
        if name is None:
            raise ConfigError(f"{self.path} records no dataset; name one with --data")
        opts = self.data_options if name == self.data_name else {}
        return datasets.load(name, split, data_dir or self.data_dir, **opts)


def load_model(run_dir, which: str = "best", device: str = "cpu"):
    """The model of the run in ``run_dir`` with checkpoint ``which``'s weights (see :class:`Run`)."""
    return Run(run_dir).load_model(which, device)


def load_split(run_dir, split: str, data_dir=None, dataset: str | None = None):
    """Split ``split`` of the run's dataset (see :meth:`Run.load_split`)."""
    return Run(run_dir).load_split(split, data_dir, dataset)
