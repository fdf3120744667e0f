"""The training configuration: one dataclass, saved in every run's ``config.json``."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field

from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import ConfigError
from pixelzoo.utils import settings
from pixelzoo.utils.io import read_json
from pixelzoo.utils.settings import SEED_LIMIT, setting


@dataclass
class TrainConfig:
    """Everything that defines a training run.

    Args:
        model: registered model name.
        preset: model preset; None picks the preset named after the dataset if the
            model has one, else "default".
        overrides: model settings on top of the preset (e.g. {"blocks": 15}).
        data: dataset name.
        data_dir: a folder holding the dataset's files (None: the download cache).
        data_options: dataset options (e.g. {"binarize": "dynamic"} for mnist).
        steps, epochs, minutes: stop after this many optimizer steps / epochs /
            minutes, whichever comes first (default: 20 epochs). Minutes are the
            wall time of the training loop, as the user waits for it: training
            steps, validation, sample grids and checkpoints together (the run stops
            its steps early enough for the last validation to fit); the run's
            metrics say how the time split.
        batch_size: global batch size (split across processes under torchrun).
        micro_batch: if set, each process runs its share of the batch in chunks of
            at most this many images and accumulates their gradients: the same
            optimizer step with less memory. On a CPU it is also faster for large
            batches (a 10-layer, 128-map Gated PixelCNN step of 256 images: 106 s
            whole, about 30 s in chunks of 32; see the README).
        lr: Adam learning rate; None: the model family's default (its papers'
            value: 2e-4 for DCGAN, 1e-3 for PGGAN and the autoregressive models).
        lr_schedule: "exponential" multiplies the learning rate by lr_decay after
            every step; "cosine" anneals it to 0 over the run's steps.
        lr_decay: the per-step factor of the exponential schedule.
        warmup_steps: a linear warm-up of the learning rate over this many steps.
        betas: Adam's (beta1, beta2); None: the family's default ((0.5, 0.999) for
            DCGAN, (0, 0.99) for PGGAN, else PyTorch's (0.9, 0.999)).
        grad_clip: clip the global gradient norm to this (0 disables); None: the
            family's default (1.0; off for the GANs, whose papers do not clip).
        seed: sets every random number generator of the run.
        eval_batch_size: images per batch when validating.
        log_every: steps between training-loss records.
        valid_every: epochs between validations (with their sample grid and
            checkpoint); the end of training always validates. Raise it when
            validation costs more than an epoch (a VAE's IWAE bound on 10,000
            images takes 7 minutes on one core, its epoch 36 s).
        valid_images: validate on a fixed random subset of this many validation
            images, drawn once from the seed (the same on resume); None: chosen by
            ``valid_share``. The best checkpoint is then the best on that subset;
            ``evaluate`` and ``compare`` always score the whole split.
        valid_share: the most of the run's time validation may take (0.2: a fifth).
            Unless ``valid_images`` is given, the run times one batch of validation
            after its first steps and takes the largest fixed subset (drawn from the
            seed, as ``valid_images``) that fits the share over the validations it
            expects; the number is then written into ``config.json`` (so a resumed
            run validates the same images). A validation between epochs that would
            overrun the share is skipped (the end of training always validates);
            a validation of at most 2 seconds is never cut or skipped; 1 turns the
            bound off.
        ckpt_every: steps between checkpoints (and one at every validation).
        samples: images in the sample grid written after every validation (0: none).
        device: "auto", "cpu", "cuda", "cuda:1"...
        amp: autocast for training steps (bfloat16; see ``amp_dtype``); evaluation
            stays float32. None (the default): on where the device computes bf16
            natively (a GPU from Ampere on, or a CPU with AVX512-BF16 or AMX, where it
            doubles PixelCNN's throughput), float16 on older GPUs, off where bf16
            would be emulated (an AVX2-only CPU: 100x slower than float32).
            What was chosen is written to ``config.json`` ("chosen") and to the
            metrics (a "setup" record at every start).
        amp_dtype: the autocast type, "bfloat16" or "float16" (naming one turns
            ``amp`` on). None: bfloat16, except on a GPU without it (a V100, a T4),
            where the default is float16 with a gradient scaler: the loss is scaled
            before backward, the gradients unscaled before clipping, and a step whose
            gradients overflow is skipped with the scale halved (its state is in
            every checkpoint, so a resumed run scales alike).
        compile: ``torch.compile`` the training step (its loss's forward and backward;
            see :mod:`pixelzoo.training.compiling`). None (the default): decided after
            the first timed steps, on when at least 20 minutes of eager steps are left
            and a compiler is available (PixelCNN h=96 trains 2.2x faster compiled on a
            2-core AMX CPU, after 14 s of compiling); a resumed run keeps the
            decision. What was chosen is written to ``config.json`` ("chosen").
        channels_last: keep the model's 4-d weights and the training batches in
            channels_last memory format (the layout oneDNN's and cuDNN's convolutions
            prefer, saving their layout conversions, while the element-wise work between
            them may slow down). Off by default: on a 2-core AVX2 CPU in float32 it did
            not help (Gated PixelCNN 10x128 0.98x, range 0.86-1.16; PixelCNN h=96 0.90x,
            ``benchmarks/roofline.py --channels-last``); on a 2-core AMX CPU under bf16
            the eager step ran 1.34x faster for Gated PixelCNN 10x128, 1.16x for
            PixelCNN++ and 1.05x for PixelCNN h=96, and beside ``compile`` it added
            little (median of 3 interleaved pairs each). Measure before turning it on
            (``--set channels_last=true``). Checkpoints hold the default layout.
        ema: Polyak averaging (PixelCNN++ §3 uses 0.9995): keep an exponential moving
            average of the weights, avg = d avg + (1 - d) w after every step t,
            starting from the initial weights, with d = min(ema, (1 + t) / (10 + t))
            (a warm-up, so that short runs are not dominated by the initial
            weights); validation, sample grids and the checkpoints' model weights use
            the average (the raw weights are kept in the checkpoint's state for
            resuming). GANs average the generator only. None: the family's default
            (0.999 for PGGAN's generator, else off); 0: off.
        logger: where the metrics go besides ``metrics.jsonl``: "tensorboard" (the
            run's ``tb/``), or "wandb": TensorBoard and a Weights & Biases run too
            (``pip install wandb``; the scalars, sample grids and settings; project
            ``$WANDB_PROJECT`` or "pixelzoo"; ``WANDB_MODE=offline`` keeps it local).
        cond: "class" trains a class-conditional model p(x | y) on the data's labels
            (the model is built with num_classes of the data); None trains p(x).
    """

    model: str = "pixelcnn"
    preset: str | None = None
    overrides: dict = field(default_factory=dict)
    data: str = "digits"
    data_dir: str | None = None
    data_options: dict = field(default_factory=dict)
    steps: int | None = setting(None, low=1)
    epochs: int | None = setting(None, low=1)
    minutes: float | None = setting(None, above=0)
    batch_size: int = setting(64, low=1)
    micro_batch: int | None = setting(None, low=1)
    lr: float | None = setting(None, above=0)
    lr_schedule: str = setting("exponential", choices=("exponential", "cosine"))
    lr_decay: float = setting(1.0, above=0, high=1)
    warmup_steps: int = setting(0, low=0)
    betas: tuple[float, float] | None = setting(None, low=0, below=1)
    grad_clip: float | None = setting(None, low=0)
    seed: int = setting(0, low=0, below=SEED_LIMIT)
    eval_batch_size: int = setting(256, low=1)
    log_every: int = setting(50, low=1)
    valid_every: int = setting(1, low=1)
    valid_images: int | None = setting(None, low=1)
    valid_share: float = setting(0.2, above=0, high=1)
    ckpt_every: int = setting(500, low=1)
    samples: int = setting(16, low=0, high=1024)
    device: str = "auto"
    amp: bool | None = None
    amp_dtype: str | None = setting(None, choices=("bfloat16", "float16"))
    compile: bool | None = None
    channels_last: bool = False
    ema: float | None = setting(None, low=0, below=1)
    cond: str | None = setting(None, choices=("class",))
    logger: str = setting("tensorboard", choices=("tensorboard", "wandb"))

    # Settings a resumed run may change (recorded at the step they change); the
    # others define the run, and changing them would make it another run.
    RESUMABLE: typing.ClassVar[tuple[str, ...]] = (
        "steps", "epochs", "minutes", "lr", "lr_schedule", "lr_decay", "warmup_steps",
        "grad_clip", "micro_batch", "eval_batch_size", "log_every", "valid_every",
        "ckpt_every", "samples", "device", "amp", "amp_dtype", "compile", "channels_last",
        "data_dir", "logger",
    )  # fmt: skip

    def validate(self) -> TrainConfig:
        """Coerce every setting to its type (strictly) and check its range; returns self."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = settings.coerce(getattr(self, f.name), hints[f.name], f.name, "training")
            setattr(self, f.name, value)
        settings.check(self, "training")
        return self

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """A config from a dict of settings (a run's ``config.json`` "train"), coerced and checked."""
        if not isinstance(d, dict):
            raise ConfigError("training settings must be a JSON object")
        return settings.build(cls, d, "training")

    @classmethod
    def from_file(cls, path) -> TrainConfig:
        """The training settings of a JSON file: a run's ``config.json`` (replayed: its model
        is rebuilt from the full saved model settings) or a file of settings a person wrote."""
        obj = read_json(path, error=ConfigError)
        if not isinstance(obj, dict):
            raise ConfigError(f"{path} must hold a JSON object of training settings")
        if "train" not in obj:
            return cls.from_dict(obj)
        if obj.get("kind") == "evaluator":
            raise ConfigError(
                f"{path} is an evaluator's configuration; use pixelzoo train-evaluator"
            )
        cfg = cls.from_dict(obj["train"])
        saved = (obj.get("model") or {}).get("config")
        if isinstance(saved, dict):  # the resolved network, whatever the presets say today
            cfg.overrides = {
                k: v for k, v in saved.items() if k != "num_classes" or cfg.cond is None
            }
        return cfg

    def model_settings(self) -> set[str]:
        return {f.name for f in dataclasses.fields(models.get(self.model).config_cls)}

    def parse_sets(self, pairs: list[str]) -> dict:
        """``--set KEY=VALUE`` pairs as settings of this run: ``{"overrides": {..},
        "data_options": {..}, training setting: value, ..}`` (only what the pairs set).

        A key is a model setting (of ``self.model``), a training setting, or
        ``data.OPTION``. Values are read as JSON where they parse (``3``, ``1e-3``,
        ``[0, 0.99]``), else as strings; training settings are coerced here, model
        settings when the model is built.
        """
        model_fields = self.model_settings()
        train_fields = set(self.field_names()) - {"overrides", "data_options"}
        out: dict = {"overrides": {}, "data_options": {}}
        for pair in pairs:
            key, sep, text = pair.partition("=")
            if not sep or not key:
                raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
            if key.startswith("data."):
                option = key[5:]
                if option not in datasets.options(self.data):
                    raise ConfigError(
                        f"dataset {self.data!r} has no option {option!r}; valid options: "
                        f"{', '.join(datasets.options(self.data)) or 'none'}"
                    )
                out["data_options"][option] = settings.parse_text(text)
            elif key in model_fields:
                out["overrides"][key] = settings.parse_text(text)
            elif key in train_fields:
                typ = typing.get_type_hints(TrainConfig)[key]
                out[key] = settings.coerce(text, typ, key, "training")
            else:
                raise ConfigError(
                    f"--set {key}: not a setting of model {self.model!r} "
                    f"({', '.join(sorted(model_fields))}), a training setting "
                    f"({', '.join(sorted(train_fields))}) or data.OPTION "
                    f"(see pixelzoo settings {self.model})"
                )
        return {k: v for k, v in out.items() if v != {} or k not in ("overrides", "data_options")}

    def with_sets(self, pairs: list[str]) -> TrainConfig:
        """A copy with ``--set KEY=VALUE`` pairs applied (see :meth:`parse_sets`)."""
        parsed = self.parse_sets(pairs)
        out = dataclasses.replace(
            self,
            overrides={**self.overrides, **parsed.pop("overrides", {})},
            data_options={**self.data_options, **parsed.pop("data_options", {})},
        )
        for key, value in parsed.items():
            setattr(out, key, value)
        return out

    def resolved_preset(self) -> str:
        """The model preset: the one given, else the one named after the dataset, else "default"."""
        if self.preset is not None:
            return self.preset
        return self.data if self.data in models.get(self.model).presets else "default"

    def resolve_defaults(self, family_defaults: dict) -> TrainConfig:
        """Fill ``lr``, ``betas``, ``ema``, ``grad_clip`` left as None from the family's defaults."""
        fallback = {"lr": 1e-3, "betas": (0.9, 0.999), "ema": 0.0, "grad_clip": 1.0}
        for key, value in fallback.items():
            if getattr(self, key) is None:
                setattr(self, key, family_defaults.get(key, value))
        self.betas = tuple(float(b) for b in self.betas)
        self.preset = self.resolved_preset()
        return self.validate()

    def changes_for_resume(self, requested: dict) -> dict:
        """``{key: (saved, new)}`` for the requested settings that differ from this (saved) run's.

        Settings that define the run (model, data, seed, batch size, ...) cannot change
        on resume: one sentence names the first one asked for.
        """
        hints = typing.get_type_hints(TrainConfig)
        changes = {}
        for key, value in requested.items():
            if key not in hints or key == "RESUMABLE":
                raise ConfigError(f"unknown training setting {key!r}")
            new = value
            if key not in ("overrides", "data_options"):
                new = settings.coerce(value, hints[key], key, "training")
            old = getattr(self, key)
            if key == "overrides":
                new = {**self.overrides, **new}
            if key == "data_options":
                new = {**self.data_options, **new}
            if new == old:
                continue
            if key not in self.RESUMABLE:
                what = {"overrides": "model settings", "data_options": "dataset options"}.get(
                    key, key
                )
                raise ConfigError(
                    f"a resumed run keeps its {what} ({old!r}); {key}={new!r} would make it "
                    f"another run: start a new one with --out (or pixelzoo train --config "
                    f"RUN/config.json to replay its settings)"
                )
            changes[key] = (old, new)
        return changes

    def changed_fields(self) -> dict:
        """Settings that differ from the defaults (what a ``TrainConfig`` passed to a resume asks for)."""
        base = TrainConfig()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(base, f.name)
        }
