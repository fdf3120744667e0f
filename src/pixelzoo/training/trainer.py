"""A model-agnostic trainer: any model whose ``loss(batch)`` is a scalar to minimise
(GANs: :mod:`pixelzoo.training.adversarial` overrides the update).

Features: Adam with warm-up and per-step exponential decay, gradient clipping,
validation NLL after every epoch (for models with a likelihood), ``last``/``best``
checkpoints, exact resume, DDP under torchrun, a tqdm bar, scalars to ``metrics.jsonl`` and TensorBoard, a
sample grid per epoch, and a clean stop (last good checkpoint kept) on NaN/inf.

Determinism and resume: the order of training images in epoch e is a permutation
drawn from a generator seeded with (seed, e), and dynamic binarization of step s
from one seeded with (seed, s); the global torch RNG (dropout) is saved in every
checkpoint. A resumed run therefore replays exactly the batches, and so the
losses, of the uninterrupted one.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

import pixelzoo
from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import CheckpointError, ConfigError, TrainingDiverged
from pixelzoo.evaluation.nll import bits_per_dim, nll_sum
from pixelzoo.training import checkpoint, distributed
from pixelzoo.training.config import TrainConfig
from pixelzoo.training.logging import MetricsLog
from pixelzoo.utils.images import save_grid
from pixelzoo.utils.io import atomic_write_json


class _Objective(nn.Module):
    """Wraps ``model.loss`` as ``forward`` so DistributedDataParallel syncs its gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


# Checkpoint-state prefix of the raw (trained) weights when the model weights are an average.
RAW = "train_weights."


def resolve_device(device: str, local_rank: int = 0) -> str:
    if device == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was requested but CUDA is not available")
    return device


def resolve_preset(cfg: TrainConfig) -> str:
    if cfg.preset is not None:
        return cfg.preset
    return cfg.data if cfg.data in models.get(cfg.model).presets else "default"


def _seeded(*parts: int) -> torch.Generator:
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class Trainer:
    """Train ``cfg.model`` on ``cfg.data`` into ``run_dir``.

    Args:
        cfg: the run's configuration (ignored except for stopping criteria when
            ``resume`` is True: a resumed run keeps its saved configuration).
        run_dir: folder for config, metrics, checkpoints, samples.
        resume: continue the run in ``run_dir`` from its last checkpoint.
        progress: show a tqdm progress bar.
    """

    def __init__(self, cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True):
        self.run_dir = Path(run_dir)
        model_settings = None
        if resume:
            cfg, model_settings = self._saved_config(cfg)
        cfg.validate()
        self.cfg = cfg
        self.progress = progress
        self.dist = distributed.setup(resolve_device(cfg.device))
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        if cfg.batch_size % self.dist.world_size:
            raise ConfigError(
                f"batch_size {cfg.batch_size} must be divisible by the {self.dist.world_size} processes"
            )

        opts = cfg.data_options
        self.train_set = datasets.load(cfg.data, "train", cfg.data_dir, **opts)
        self.valid_set = datasets.load(cfg.data, "valid", cfg.data_dir, **opts)
        self.steps_per_epoch = len(self.train_set) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"batch_size {cfg.batch_size} exceeds the {len(self.train_set)} training images"
            )
        limits = []
        if cfg.steps:
            limits.append(cfg.steps)
        if cfg.epochs:
            limits.append(cfg.epochs * self.steps_per_epoch)
        if not limits and not cfg.minutes:
            limits.append(20 * self.steps_per_epoch)
        self.total_steps = min(limits) if limits else None

        torch.manual_seed(cfg.seed)
        cfg.resolve_defaults(models.get(cfg.model).cls.train_defaults)
        self.preset = resolve_preset(cfg)
        # A resumed run rebuilds its model from the full saved settings, not from the
        # preset's name, so that a preset edited since cannot change the network.
        settings = dict(model_settings if model_settings is not None else cfg.overrides)
        if cfg.cond == "class" and model_settings is None:
            settings["num_classes"] = self._num_classes()
        self.model = models.build(
            cfg.model,
            self.train_set.image_shape,
            self.train_set.levels,
            self.preset,
            **settings,
        ).to(self.device)
        kind = self.model.cond_kind
        if kind not in (None, "class") and not self.model.cond_optional:
            raise ConfigError(
                f"model {cfg.model!r} is conditioned on {kind} input, which no "
                f"dataset provides; train it from Python, or use --cond class"
            )
        self.objective: nn.Module = _Objective(self.model)
        if self.dist.enabled:
            ids = [self.dist.local_rank] if self.device.startswith("cuda") else None
            self.objective = nn.parallel.DistributedDataParallel(self.objective, device_ids=ids)
        self.optimizers = self.make_optimizers()
        # Polyak averaging: a frozen copy whose weights follow the trained ones.
        self.ema: nn.Module | None = None
        if cfg.ema:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)

        self.step = 0
        self.best = math.inf
        self.elapsed = 0.0  # seconds of training so far, across resumes
        self.window = self._empty_window()
        self.ckpt_root = self.run_dir / "checkpoints"
        if resume:
            self._restore()
        else:
            self._start_run_dir()
        self.log = MetricsLog(self.run_dir, self.dist.is_main, purge_step=self.step)

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over every parameter (subclasses may use several, by name)."""
        return {"model": self._adam(self.model.parameters())}

    def _adam(self, params) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=self.cfg.betas)

    @staticmethod
    def _empty_window() -> dict:
        return {"sums": {}, "steps": 0, "images": 0, "seconds": 0.0}

    def _num_classes(self) -> int:
        """Classes of the training labels, for ``cond="class"``."""
        for split in (self.train_set, self.valid_set):
            if split.labels is None:
                raise ConfigError(
                    f"--cond class needs labelled data; dataset {self.cfg.data!r} "
                    f"({split.split}) has no labels"
                )
        return int(self.train_set.num_classes or int(self.train_set.labels.max()) + 1)

    # ------------------------------------------------------------------ run folder
    def _saved_config(self, cfg: TrainConfig) -> tuple[TrainConfig, dict]:
        """The run's saved training config (stopping criteria from ``cfg``) and model settings."""
        path = self.run_dir / "config.json"
        if not path.exists():
            raise ConfigError(
                f"cannot resume: {self.run_dir} has no config.json (not a pixelzoo run)"
            )
        saved_json = json.loads(path.read_text())
        saved = TrainConfig.from_dict(saved_json["train"])
        # Stopping criteria may be extended when resuming; nothing else changes.
        for k in ("steps", "epochs", "minutes"):
            if getattr(cfg, k) is not None:
                setattr(saved, k, getattr(cfg, k))
        return saved, saved_json["model"]["config"]

    def _start_run_dir(self) -> None:
        if (self.run_dir / "config.json").exists():
            raise ConfigError(
                f"{self.run_dir} already holds a run; resume it with --resume {self.run_dir} "
                f"or choose a new --out folder"
            )
        distributed.barrier(self.dist)  # every rank has checked before rank 0 writes
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                self.run_dir / "config.json",
                {
                    "train": dataclasses.asdict(dataclasses.replace(self.cfg, preset=self.preset)),
                    "model": self.model.spec(),
                    "data": {
                        "name": self.cfg.data,
                        "image_shape": list(self.train_set.image_shape),
                        "levels": self.train_set.levels,
                        "train_images": len(self.train_set),
                        "valid_images": len(self.valid_set),
                    },
                    "world_size": self.dist.world_size,
                    "distributed_backend": self.dist.backend,
                    "versions": {"pixelzoo": pixelzoo.__version__, "torch": torch.__version__},
                },
            )
        distributed.barrier(self.dist)

    def _restore(self) -> None:
        if checkpoint.pointer(self.ckpt_root, "last") is None:
            # Killed before the first checkpoint: start again from step 0.
            return
        weights, state, meta = checkpoint.load(self.ckpt_root, "last")
        if "optimizers" not in meta:
            raise CheckpointError(
                f"{self.ckpt_root} was written by an older pixelzoo whose checkpoints cannot be "
                f"resumed by this one; its weights still load for sampling and evaluation"
            )
        checkpoint.load_weights(self.eval_model, weights, self.ckpt_root)
        if self.ema is not None:  # the checkpoint's model weights are the average
            raw = {k[len(RAW) :]: v for k, v in state.items() if k.startswith(RAW)}
            checkpoint.load_weights(self.model, raw, self.ckpt_root)
        for name, opt in self.optimizers.items():
            checkpoint.optimizer_from_flat(opt, state, meta["optimizers"][name], name)
        torch.set_rng_state(state["rng.torch"])
        if "rng.cuda" in state and self.device.startswith("cuda"):
            torch.cuda.set_rng_state(state["rng.cuda"], self.device)
        self.step, self.best, self.elapsed = meta["step"], meta["best_valid_nats"], meta["elapsed"]
        self.window = meta["window"]
        self.on_step_change()

    def _save(self, best: bool) -> None:
        for p in self.model.parameters():
            if not torch.isfinite(p).all():
                raise TrainingDiverged(
                    f"the weights became NaN/inf at step {self.step}; the last good checkpoint in "
                    f"{self.ckpt_root} was kept"
                )
        if self.dist.is_main:
            tensors, opt_meta = {}, {}
            for name, opt in self.optimizers.items():
                flat, opt_meta[name] = checkpoint.optimizer_to_flat(opt, name)
                tensors.update(flat)
            tensors["rng.torch"] = torch.get_rng_state()
            if self.ema is not None:
                tensors.update({RAW + k: v for k, v in self.model.state_dict().items()})
            if self.device.startswith("cuda"):
                tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
            meta = {
                "step": self.step,
                "epoch": self.step / self.steps_per_epoch,
                "best_valid_nats": self.best,
                "elapsed": self.elapsed,
                "window": self.window,
                "optimizers": opt_meta,
                "model": self.model.spec(),
                **self.progress_state(),
            }
            pointers = {"last": {"step": self.step}}
            if best:
                pointers["best"] = {"step": self.step, "valid_nats": self.best}
            checkpoint.save(
                self.ckpt_root, self.step, self.eval_model.state_dict(), tensors, meta, pointers
            )
        distributed.barrier(self.dist)

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated, sampled and saved: the average if ``ema`` is set."""
        return self.ema if self.ema is not None else self.model

    # ------------------------------------------------------------------ steps
    def lr_at(self, step: int) -> float:
        warm = min(1.0, (step + 1) / self.cfg.warmup_steps) if self.cfg.warmup_steps else 1.0
        return self.cfg.lr * warm * self.cfg.lr_decay**step

    def _batch(self, step: int):
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = torch.randperm(len(self.train_set), generator=_seeded(self.cfg.seed, epoch))
        b = self.cfg.batch_size
        idx = perm[pos * b : (pos + 1) * b]
        # Binarize the whole global batch, then take this rank's slice: the images
        # are then identical to a single-process run's.
        x, y = self.train_set.get_batch(idx, _seeded(self.cfg.seed, 7919, step))
        local = slice(
            self.dist.rank * b // self.dist.world_size,
            (self.dist.rank + 1) * b // self.dist.world_size,
        )
        x = x[local].to(self.device, non_blocking=True)
        if self.model.cond_kind == "class":
            return x, y[local].to(self.device)
        return x

    def _forward_backward(self, batch) -> torch.Tensor:
        """Loss of this process's batch and its gradients, in micro-batches if asked.

        Chunk k's loss is weighted by its share of the batch, so the accumulated
        gradient is that of the whole batch's mean loss. DDP synchronises
        gradients only on the last chunk.
        """
        device_type = "cuda" if self.device.startswith("cuda") else "cpu"
        pair = isinstance(batch, tuple)
        n = len(batch[0] if pair else batch)
        size = self.cfg.micro_batch or n
        starts = list(range(0, n, size))
        total = torch.zeros((), device=self.device)
        for k, start in enumerate(starts):
            part = slice(start, start + size)
            chunk = tuple(t[part] for t in batch) if pair else batch[part]
            last = k == len(starts) - 1
            sync = contextlib.nullcontext()
            if self.dist.enabled and not last:
                sync = self.objective.no_sync()
            with sync:
                with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.cfg.amp):
                    loss = self.objective(chunk) * (min(size, n - start) / n)
                loss.backward()
            total += loss.detach().float()
        return total

    def train_step(self) -> dict[str, float]:
        """One training step (every optimizer steps once); returns the scalars to log."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.lr_at(self.step)
        scalars = self.update(self._batch(self.step))
        if self.ema is not None:
            self._update_average()
        self.step += 1
        self.on_step_change()
        return scalars

    def update(self, batch) -> dict[str, float]:
        """Gradient step on ``model.loss``: the likelihood models' (and the VAE's) update."""
        loss = self._forward_backward(batch)
        loss_v, norm_v = self.apply_gradients(self.optimizers["model"], loss, "training loss")
        return {"loss": loss_v, "grad_norm": norm_v}

    def apply_gradients(self, optimizer, loss: torch.Tensor, what: str) -> tuple[float, float]:
        """Clip the gradients of ``optimizer``'s parameters and step, unless NaN/inf appeared.

        Returns the (process-averaged) loss and gradient norm. On a non-finite loss or
        gradient nothing is applied and :class:`TrainingDiverged` says where the last
        good checkpoint is.
        """
        params = [p for group in optimizer.param_groups for p in group["params"]]
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        vals = torch.stack([loss.detach().float(), grad_norm.detach().float()])
        if self.dist.enabled:
            torch.distributed.all_reduce(vals)
            vals /= self.dist.world_size
        loss_v, norm_v = vals.tolist()
        if not (math.isfinite(loss_v) and math.isfinite(norm_v)):
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            last = checkpoint.pointer(self.ckpt_root, "last")
            kept = f"step {last['step']}" if last else "none yet"
            raise TrainingDiverged(
                f"the {what} became {loss_v} (gradient norm {norm_v}) at step {self.step + 1}; "
                f"stopped without saving, the last good checkpoint ({kept}) in {self.ckpt_root} is "
                f"untouched: resume it with a lower --lr or a smaller --set grad_clip"
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss_v, norm_v

    @torch.no_grad()
    def _update_average(self) -> None:
        """avg <- avg + (1 - d) (w - avg) for the averaged part; a copy of everything else.

        The decay warms up: after step t (from 0) it is ``d = min(ema, (1 + t) / (10 + t))``,
        as TensorFlow's ExponentialMovingAverage with ``num_updates``. NOTE: Salimans et
        al. and Karras et al. use the fixed decay; with it, a run of a few hundred
        steps at 0.999 would sample from weights still two-thirds initial. From
        t = 9,000 (0.999) or 18,000 (0.9995) on, the decay is the fixed one.
        """
        if not hasattr(self, "_ema_pairs"):
            averaged = {id(p) for p in self.model.averaged().parameters()}
            pairs = list(zip(self.ema.parameters(), self.model.parameters(), strict=True))
            self._ema_pairs = (
                [(a, w) for a, w in pairs if id(w) in averaged],
                [(a, w) for a, w in pairs if id(w) not in averaged]
                + list(zip(self.ema.buffers(), self.model.buffers(), strict=True)),
            )
        lerped, copied = self._ema_pairs
        decay = min(self.cfg.ema, (1 + self.step) / (10 + self.step))
        if lerped:
            torch._foreach_lerp_([a for a, _ in lerped], [w for _, w in lerped], 1 - decay)
        for a, w in copied:
            a.copy_(w)

    def on_step_change(self) -> None:
        """Hook: the step counter changed (by a step or a restore); schedules follow it."""

    def progress_state(self) -> dict:
        """Hook: JSON state of a schedule, saved in every checkpoint's meta for readers."""
        return {}

    # ------------------------------------------------------------------ epoch end
    def validate(self) -> dict:
        """Validation NLL (exact or a bound, per ``nats_kind``); empty for a model without one."""
        kind = self.model.nats_kind
        if kind is None:
            return {}
        n = len(self.valid_set)
        idx = torch.arange(n)[self.dist.rank :: self.dist.world_size]
        local = nll_sum(self.eval_model, self.valid_set, idx, self.cfg.eval_batch_size)
        nats = distributed.all_sum(local, self.dist, self.device) / n
        return {
            "nats": nats,
            "bits_per_dim": bits_per_dim(nats, self.model.dims),
            "nats_kind": kind,
        }

    def write_samples(self) -> None:
        if not self.cfg.samples or not self.dist.is_main:
            return
        epoch = self.step // self.steps_per_epoch
        g = _seeded(self.cfg.seed, 104729, epoch)
        x, nrow = self.eval_model.preview(self.cfg.samples, self.valid_set, g)
        if x is not None:
            path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
            save_grid(x, self.model.levels, path, nrow=nrow)

    def end_of_epoch(self) -> dict:
        v = self.validate()
        improved = bool(v) and v["nats"] < self.best
        if v:
            self.best = min(self.best, v["nats"])
            self.log.write(
                {
                    "split": "valid",
                    "step": self.step,
                    "epoch": self.step / self.steps_per_epoch,
                    "train_seconds": self.elapsed,
                    **v,
                    "best_nats": self.best,
                }
            )
        self.write_samples()
        self._save(best=improved)
        return v

    # ------------------------------------------------------------------ loop
    def fit(self) -> dict:
        """Train until a stopping criterion; returns the last validation result."""
        cfg, spe = self.cfg, self.steps_per_epoch
        last_valid: dict = {}
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            unit="step",
            dynamic_ncols=True,
            disable=not (self.progress and self.dist.is_main),
            desc=f"{cfg.model}/{cfg.data}",
        )
        self.model.train()
        try:
            while self.total_steps is None or self.step < self.total_steps:
                t0 = time.perf_counter()
                scalars = self.train_step()
                dt = time.perf_counter() - t0
                self.elapsed += dt
                w = self.window
                for k, v in scalars.items():
                    w["sums"][k] = w["sums"].get(k, 0.0) + v
                w["steps"] += 1
                w["images"] += cfg.batch_size
                w["seconds"] += dt
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    means = {k: v / w["steps"] for k, v in w["sums"].items()}
                    record = {"split": "train", "step": self.step, "epoch": self.step / spe}
                    record["train_seconds"] = self.elapsed  # training-step time, across resumes
                    record.update(means)
                    if self.model.nats_kind is not None:  # the loss is nats per sub-pixel
                        record["bits_per_dim"] = means["loss"] / math.log(2)
                    record["lr"] = self.lr_at(self.step - 1)
                    record["images_per_s"] = w["images"] / max(w["seconds"], 1e-9)
                    record.update(self.progress_state())
                    self.log.write(record)
                    bar.set_postfix(self.postfix(record))
                    self.window = self._empty_window()
                out_of_time = cfg.minutes is not None and self.elapsed >= 60 * cfg.minutes
                finished = self.total_steps is not None and self.step >= self.total_steps
                if self.step % (spe * cfg.valid_every) == 0 or finished or out_of_time:
                    last_valid = self.end_of_epoch()
                elif self.step % cfg.ckpt_every == 0:
                    self._save(best=False)
                if out_of_time:
                    break
        finally:
            bar.close()
            self.log.close()
        return {"step": self.step, "valid": last_valid, "best_valid_nats": self.best}

    def postfix(self, record: dict) -> dict:
        """What the progress bar shows after each logged window."""
        return {"bpd": f"{record['bits_per_dim']:.4f}"}

    def close(self) -> None:
        distributed.teardown(self.dist)


def trainer_class(model_name: str) -> type[Trainer]:
    """The trainer for a model family: adversarial models need their own update."""
    from pixelzoo.models.adversarial import AdversarialModel
    from pixelzoo.training.adversarial import AdversarialTrainer

    cls = models.get(model_name).cls
    return AdversarialTrainer if issubclass(cls, AdversarialModel) else Trainer


def train(cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True) -> dict:
    """Train (or resume) a run; see :class:`Trainer`."""
    if resume:  # the saved model name decides, not the one on the command line
        path = Path(run_dir) / "config.json"
        if path.exists():
            cfg = dataclasses.replace(cfg, model=json.loads(path.read_text())["train"]["model"])
    trainer = trainer_class(cfg.model)(cfg, run_dir, resume=resume, progress=progress)
    try:
        return trainer.fit()
    finally:
        trainer.close()
