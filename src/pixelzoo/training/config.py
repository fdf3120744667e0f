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
            after every step, after a linear warm-up of ``warmup_steps``. ``lr``
            None: the model family's default (its papers' value: 2e-4 for DCGAN,
            1e-3 for PGGAN and the autoregressive models).
        betas: Adam's (beta1, beta2); None: the family's default ((0.5, 0.999) for
            DCGAN, (0, 0.99) for PGGAN, else PyTorch's (0.9, 0.999)).
        grad_clip: clip the global gradient norm to this (0 disables); None: the
            family's default (1.0; off for the GANs, whose papers do not clip).
        seed: sets every random number generator of the run.
        log_every: steps between training-loss records; ``ckpt_every`` steps
            between checkpoints (and one at the end of every epoch).
        valid_every: epochs between validations (with their sample grid and
            checkpoint); the end of training always validates. Raise it when
            validation costs more than an epoch (a VAE's IWAE bound on 10,000
            images takes 7 minutes on one core, its epoch 36 s).
        samples: images in the sample grid written after every epoch (0: none).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        amp: bfloat16 autocast for training steps (CUDA, or CPUs with AVX512-BF16,
            where it doubles PixelCNN's throughput); evaluation stays float32.
        ema: Polyak averaging (PixelCNN++ §3 uses 0.9995): keep an exponential moving
            average of the weights, ``avg = d * avg + (1 - d) * w`` after every step t,
            starting from the initial weights, with ``d = min(ema, (1 + t) / (10 + t))``
            (a warm-up, so that short runs are not dominated by the initial weights); validation, sample grids and the
            checkpoints' model weights use the average (the raw weights are kept in
            the checkpoint's state for resuming). GANs average the generator only.
            None: the family's default (0.999 for PGGAN's generator, else off);
            0: off.
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
    lr: float | None = None
    betas: tuple[float, float] | None = None
    lr_decay: float = 1.0
    warmup_steps: int = 0
    grad_clip: float | None = None
    seed: int = 0
    eval_batch_size: int = 256
    log_every: int = 50
    valid_every: int = 1
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
            "valid_every": self.valid_every,
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
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr must be positive, got {self.lr}")
        if self.betas is not None and (
            len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas)
        ):
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"lr_decay must be in (0, 1], got {self.lr_decay}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ConfigError(f"ema must be in [0, 1) (0: off), got {self.ema}")
        if self.cond not in (None, "class"):
            raise ConfigError(f"cond must be 'class' or None, got {self.cond!r}")
        if (self.grad_clip or 0) < 0 or self.samples < 0 or self.warmup_steps < 0:
            raise ConfigError("grad_clip, samples and warmup_steps must not be negative")

    def resolve_defaults(self, family_defaults: dict) -> TrainConfig:
        """Fill ``lr``, ``betas``, ``ema``, ``grad_clip`` left as None from the family's defaults."""
        fallback = {"lr": 1e-3, "betas": (0.9, 0.999), "ema": 0.0, "grad_clip": 1.0}
        for key, value in fallback.items():
            if getattr(self, key) is None:
                setattr(self, key, family_defaults.get(key, value))
        self.betas = tuple(float(b) for b in self.betas)
        return self

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
            if typing.get_origin(base) is tuple:
                parts = (
                    value
                    if isinstance(value, (list, tuple))
                    else str(value).strip("()[]").split(",")
                )
                return tuple(float(p) for p in parts)
            return base(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}={value!r} is not a valid {base.__name__}") from None
