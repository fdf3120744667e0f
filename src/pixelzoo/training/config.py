"""The training configuration: one dataclass, saved in every run's ``config.json``."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from pixelzoo.errors import ConfigError


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Args:
        model: registered model name.
        preset: model preset; ``None`` picks the preset named after the dataset if
            the model has one, else ``"default"``.
        overrides: model settings on top of the preset (e.g. ``{"blocks": 15}``).
        data: dataset name; ``data_dir`` a folder holding its files (else the cache).
        data_options: dataset options (e.g. ``{"binarize": "dynamic"}`` for mnist).
        steps / epochs / minutes: stop after this many optimizer steps / epochs /
            minutes of training, whichever comes first (default: 20 epochs).
        batch_size: global batch size (split across processes under torchrun).
        micro_batch: if set, each process runs its share of the batch in chunks of
            at most this many images and accumulates their gradients: the same
            optimizer step with less memory. On a CPU it is also faster for large
            batches (a 10-layer, 128-map Gated PixelCNN step of 256 images: 106 s
            whole, about 30 s in chunks of 32; see the README).
        lr, lr_decay, warmup_steps: Adam learning rate, multiplied by ``lr_decay``
            after every step, after a linear warm-up of ``warmup_steps``.
        grad_clip: clip the global gradient norm to this (0 disables).
        seed: sets every random number generator of the run.
        log_every: steps between training-loss records; ``ckpt_every`` steps
            between checkpoints (and one at the end of every epoch).
        samples: images in the sample grid written after every epoch (0: none).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        amp: bfloat16 autocast for training steps (CUDA, or CPUs with AVX512-BF16,
            where it doubles PixelCNN's throughput); evaluation stays float32.
        ema: Polyak averaging (PixelCNN++ §3 uses 0.9995): keep an exponential moving
            average of the weights, ``avg = ema * avg + (1 - ema) * w`` after every
            step, starting from the initial weights; validation, sample grids and the
            checkpoints' model weights use the average (the raw weights are kept in
            the checkpoint's state for resuming). None: no averaging.
        cond: ``"class"`` trains a class-conditional model p(x | y) on the data's
            labels (the model is built with ``num_classes`` of the data); None
            trains p(x).
    """

    model: str = "pixelcnn"
    preset: str | None = None
    overrides: dict = field(default_factory=dict)
    data: str = "digits"
    data_dir: str | None = None
    data_options: dict = field(default_factory=dict)
    steps: int | None = None
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int = 64
    micro_batch: int | None = None
    lr: float = 1e-3
    lr_decay: float = 1.0
    warmup_steps: int = 0
    grad_clip: float = 1.0
    seed: int = 0
    eval_batch_size: int = 256
    log_every: int = 50
    ckpt_every: int = 500
    samples: int = 16
    device: str = "auto"
    amp: bool = False
    ema: float | None = None
    cond: str | None = None

    def validate(self) -> None:
        positive = {
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "log_every": self.log_every,
            "ckpt_every": self.ckpt_every,
        }
        optional = {
            "steps": self.steps,
            "epochs": self.epochs,
            "minutes": self.minutes,
            "micro_batch": self.micro_batch,
        }
        for k, v in optional.items():
            if v is not None:
                positive[k] = v
        for k, v in positive.items():
            if not v > 0:
                raise ConfigError(f"{k} must be positive, got {v}")
        if not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.ema is not None and not 0 < self.ema < 1:
            raise ConfigError(f"ema must be in (0, 1), got {self.ema}")
        if self.cond not in (None, "class"):
            raise ConfigError(f"cond must be 'class' or None, got {self.cond!r}")
        if self.grad_clip < 0 or self.samples < 0 or self.warmup_steps < 0:
            raise ConfigError("grad_clip, samples and warmup_steps must not be negative")

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        unknown = set(d) - set(cls.field_names())
        if unknown:
            raise ConfigError(f"unknown training setting {sorted(unknown)[0]!r}")
        return cls(**d)

    @classmethod
    def coerce(cls, key: str, value):
        """Convert a CLI string to the type of training setting ``key``."""
        typ = typing.get_type_hints(cls)[key]
        args = [a for a in typing.get_args(typ) if a is not type(None)] or [typ]
        base = args[0]
        if value in (None, "None", "none") and type(None) in typing.get_args(typ):
            return None
        try:
            if base is bool:
                return str(value).lower() in ("1", "true", "yes")
            return base(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not a valid {base.__name__}") from None
