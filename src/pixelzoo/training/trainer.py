"""The training loop: any model whose ``loss(batch)`` is a scalar to minimise.

:class:`Trainer` is the core every run shares (the likelihood models, the VAE,
the GANs through :mod:`pixelzoo.training.adversarial`, and the evaluator
classifier through :mod:`pixelzoo.training.evaluator`): it takes a built model,
its training and validation sets and a resolved :class:`TrainConfig`, and runs
Adam with warm-up and a per-step schedule, gradient clipping, validation after
every ``valid_every`` epochs, ``last``/``best`` checkpoints, exact resume, DDP
under torchrun, a tqdm bar, scalars to ``metrics.jsonl`` and TensorBoard, a
sample grid per validation, and a clean stop (last good checkpoint kept) on
NaN/inf. :mod:`pixelzoo.training.launch` builds those pieces from names.

Determinism and resume: the order of training images in epoch e is a permutation
drawn from a generator seeded with (seed, e), and dynamic binarization of step s
from one seeded with (seed, s); the global torch RNG (dropout) is saved in every
checkpoint. A resumed run therefore replays exactly the batches, and so the
losses, of the uninterrupted one. Validation draws its own random numbers (a VAE's
importance samples) from a fixed seed and leaves the training ones untouched, so
what or how much is validated never changes the training.

Time: the loop keeps account of its seconds (training steps, validation, sample
grids, checkpoints, and the wall time of it all), saves them in every checkpoint,
writes them as the run's last metrics record (``"split": "time"``) and shows
validation's share in the progress bar. A ``minutes`` budget is wall time: the steps
stop when the wall time plus what the end costs (the last validation, sample grid
and checkpoint) reaches it. Validation is held to ``valid_share`` of the time by a
fixed subset sized after the first steps and by skipping a validation between
epochs that would overrun it (see :mod:`.budget`).

Compiling: the step's forward and backward run under ``torch.compile`` when the run is
long enough to repay the compiler (``compile``, decided at step 6 and kept in the
checkpoints, so a resumed run compiles exactly where the uninterrupted one did; see
:mod:`.compiling`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from pixelzoo.data.images import make_grid, save_grid
from pixelzoo.errors import CheckpointError, ConfigError, TrainingDiverged
from pixelzoo.evaluation.nll import bits_per_dim, nll_sum
from pixelzoo.runs import Checkpoints, MetricsLog, Run
from pixelzoo.runs.checkpoint import load_weights, optimizer_from_flat, optimizer_to_flat
from pixelzoo.runs.metrics import require_wandb
from pixelzoo.training import budget, compiling, distributed
from pixelzoo.training.config import TrainConfig
from pixelzoo.utils.interrupts import import_held
from pixelzoo.utils.io import atomic_write_json


class Objective(nn.Module):
    """Wraps ``model.loss`` as ``forward`` so DistributedDataParallel syncs its gradients."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, batch):
        return self.model.loss(batch)


# Checkpoint-state prefix of the raw (trained) weights when the model weights are an average.
RAW = "train_weights."
# What the loop's time is counted as (see the module's "Time").
SECONDS = ("training", "validation", "samples", "checkpoints", "wall")
VALID_SEED = 15485863  # added to the run's seed for validation's own random numbers


def resolve_device(device: str, local_rank: int = 0) -> str:
    """``"auto"`` -> the local GPU if there is one, else the CPU; anything else checked."""
    if device == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} was requested but CUDA is not available")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    elif parsed.type != "cpu":
        raise ConfigError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N")
    return str(parsed)


def fast_bfloat16(device: str) -> bool:
    """Whether bfloat16 autocast speeds up training on ``device``: a GPU with bf16
    arithmetic (NVIDIA Ampere and later), or a CPU with native bf16 (AVX512-BF16 or AMX).
    Elsewhere it is emulated: measured on an AVX2-only AMD EPYC, a 1024x1024 bf16 matmul
    ran at 0.68 GFLOP/s against fp32's 63."""
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def choose_amp(
    amp: bool | None, device: str, dtype: str | None = None
) -> tuple[torch.dtype | None, str]:
    """The autocast type of the training steps (None: float32), and why.

    ``amp`` and ``dtype`` are the run's settings. The type is ``dtype`` if it is set,
    else bfloat16 where the device has it, else (a GPU without bf16, as a V100 or a
    T4) float16, whose gradients a scaler keeps from underflowing. Autocast is on if
    ``amp`` says so (or ``dtype`` names a type); by default on exactly where it is
    native (:func:`fast_bfloat16`), or float16 on such a GPU.
    """
    cuda = torch.device(resolve_device(device)).type == "cuda"
    bf16 = fast_bfloat16(device)
    if dtype is not None:
        half = getattr(torch, dtype)
    else:
        half = torch.float16 if cuda and not bf16 else torch.bfloat16
    if amp is None and dtype is not None:
        amp = True  # naming the type asks for it
    if amp is not None:
        return (half if amp else None), "set"
    if bf16:
        return torch.bfloat16, f"default: bfloat16 is native on {device}"
    if cuda:
        return torch.float16, (f"default: {device} has no bfloat16: float16 autocast with a "
                               "gradient scaler")  # fmt: skip
    return None, f"default: bfloat16 would be emulated on {device} (no AVX512-BF16 or AMX)"


def seeded(*parts: int) -> torch.Generator:
    """A CPU generator seeded by a tuple of integers (seed, epoch, ...)."""
    seed = 0
    for p in parts:
        seed = (seed * 1_000_003 + int(p)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class Trainer:
    """Train ``model`` on ``train_set`` into ``run_dir``, validating on ``valid_set``.

    Args:
        model: the model (on the CPU, built and seeded by the caller); it is moved to
            the configured device.
        train_set, valid_set: :class:`~pixelzoo.data.ImageDataset` splits.
        cfg: the run's resolved configuration (lr, betas, ema, grad_clip filled in).
        run_dir: folder for config, metrics, checkpoints, samples.
        record: what a fresh run writes to ``config.json`` (None when resuming).
        resume: continue from the run's last checkpoint.
        progress: show a tqdm progress bar.

    The caller holds the run folder's lock (see :mod:`pixelzoo.training.launch`).
    """

    # The validation figure that picks the best checkpoint (lower is better).
    best_key = "nats"
    # Whether ``compile`` applies: the step is ``_forward_backward`` on the objective.
    compiles = True

    def __init__(
        self,
        model: nn.Module,
        train_set,
        valid_set,
        cfg: TrainConfig,
        run_dir,
        *,
        record: dict | None = None,
        resume: bool = False,
        progress: bool = True,
    ):
        self.run_dir = Path(run_dir)
        self.cfg = cfg.validate()
        self.progress = progress
        self.dist = distributed.setup(resolve_device(cfg.device))
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        if cfg.batch_size % self.dist.world_size:
            raise ConfigError(
                f"batch_size {cfg.batch_size} must be divisible by the {self.dist.world_size} processes"
            )
        self.check_supported()
        if cfg.logger == "wandb" and self.dist.is_main:
            require_wandb()  # before anything is written
        self.amp_dtype, amp_reason = choose_amp(cfg.amp, self.device, cfg.amp_dtype)
        self.amp = self.amp_dtype is not None
        # float16's small range: the loss is scaled before backward and the gradients
        # unscaled before clipping; a step whose gradients overflow is skipped and the
        # scale halved (torch.amp.GradScaler). A no-op for bfloat16 and float32.
        self.scaler = torch.amp.GradScaler(
            torch.device(self.device).type, enabled=self.amp_dtype == torch.float16
        )
        # What the defaults chose for this machine (config.json "chosen", and a "setup"
        # record at every start: a resumed run may be on another machine).
        dtype_name = str(self.amp_dtype).removeprefix("torch.") if self.amp else None
        self.chosen = {"amp": self.amp, "amp_dtype": dtype_name, "amp_reason": amp_reason,
                       "threads": torch.get_num_threads(), "device": self.device}  # fmt: skip
        slow = (self.amp_dtype == torch.bfloat16 and not fast_bfloat16(self.device)) or (
            self.amp_dtype == torch.float16 and not self.device.startswith("cuda")
        )
        if slow and self.dist.is_main:
            warnings.warn(
                f"amp=true on {self.device}, which has no native {dtype_name}: "
                "autocast is emulated there and runs far slower than float32 (set amp=false)",
                stacklevel=2,
            )
        self.train_set, self.valid_set = train_set, valid_set
        self.steps_per_epoch = len(train_set) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"batch_size {cfg.batch_size} exceeds the {len(train_set)} training images"
            )
        limits = []
        if cfg.steps:
            limits.append(cfg.steps)
        if cfg.epochs:
            limits.append(cfg.epochs * self.steps_per_epoch)
        if not limits and not cfg.minutes:
            limits.append(20 * self.steps_per_epoch)
        self.total_steps = min(limits) if limits else None
        if cfg.lr_schedule == "cosine" and self.total_steps is None:
            raise ConfigError(
                "lr_schedule='cosine' needs a number of steps or epochs to anneal over"
            )

        self.model = model.to(self.device)
        if cfg.channels_last:  # the 4-d weights and buffers; the batches follow in _batch
            self.model.to(memory_format=torch.channels_last)
        self.objective: nn.Module = Objective(self.model)
        if self.dist.enabled:
            self.objective = self.distribute(self.objective)
        self.eager_objective = self.objective
        # torch.compile of the step (see .compiling): None until the first steps decide.
        self.compile_on, compile_reason = (
            compiling.choose_compile(cfg.compile, self.device, None, self.dist.enabled)
            if self.compiles
            else (False, "this trainer's steps run eagerly")
        )
        self.chosen.update(compile=self.compile_on, compile_reason=compile_reason)
        self.optimizers = self.make_optimizers()
        # Polyak averaging: a frozen copy whose weights follow the trained ones.
        self.ema: nn.Module | None = None
        if cfg.ema:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)

        self.step = 0
        self.best = math.inf
        # Seconds of the training loop, across resumes (see the module's "Time").
        self.seconds = dict.fromkeys(SECONDS, 0.0)
        # What the last validation, sample grid and checkpoint took: the reserve that a
        # ``minutes`` run keeps for its end (validation None: not yet measured).
        self.last_cost = {"validation": None, "samples": 0.0, "checkpoints": 0.0}
        self.valid_estimate: float | None = None  # seconds of one validation, from a timed batch
        self.expected_validations = 1
        self.validation_planned = False
        self._wall_from: float | None = None  # when this process's part of the wall time began
        self.window = self._empty_window()
        run_id = Run(self.run_dir).run_id if resume else (record or {}).get("run_id")
        self.checkpoints = Checkpoints(self.run_dir / "checkpoints", run_id)
        self.ckpt_root = self.checkpoints.root
        self.log: MetricsLog | None = None
        if resume:
            self._restore()
        else:
            self._write_record(record)
        if self.compile_on:
            self.objective = compiling.compiled(self.eager_objective)
        wandb = None
        if cfg.logger == "wandb":
            config = Run(self.run_dir).config
            wandb = {"id": run_id or self.run_dir.name,
                     "config": {k: config[k] for k in ("model", "train") if k in config}}  # fmt: skip
        self.log = MetricsLog(self.run_dir, self.dist.is_main, purge_step=self.step, wandb=wandb)
        self.log.write({"split": "setup", "step": self.step, **self.chosen,
                        "world_size": self.dist.world_size, "resumed": resume})  # fmt: skip
        if self.dist.is_main and not resume:
            saved = Run(self.run_dir).config
            settings = {k: saved[k] for k in ("model", "train", "evaluator") if k in saved}
            self.log.hparams(settings, ("valid/nats", "valid/bits_per_dim", "valid/accuracy"))

    def check_supported(self) -> None:
        """Hook: refuse, before anything is written, what this trainer cannot do."""

    def distribute(self, objective: nn.Module) -> nn.Module:
        """Under torchrun: the objective in DistributedDataParallel, whose backward
        averages the gradients over the processes."""
        ids = [self.dist.local_rank] if self.device.startswith("cuda") else None
        return nn.parallel.DistributedDataParallel(objective, device_ids=ids)

    def model_spec(self) -> dict:
        """What rebuilds the model (saved in every checkpoint's metadata)."""
        return self.model.spec()

    def make_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One Adam over every parameter (subclasses may use several, by name)."""
        return {"model": self._adam(self.model.parameters())}

    def _adam(self, params) -> torch.optim.Adam:
        import_held("torch._dynamo")  # torch.optim imports it on first use: hold Ctrl-C
        return torch.optim.Adam(params, lr=self.cfg.lr, betas=self.cfg.betas)

    @staticmethod
    def _empty_window() -> dict:
        return {"sums": {}, "counts": {}, "steps": 0, "images": 0, "seconds": 0.0}

    # ------------------------------------------------------------------ run folder
    def _write_record(self, record: dict) -> None:
        distributed.barrier(self.dist)  # every rank has built its model before rank 0 writes
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            record = {
                **record,
                "world_size": self.dist.world_size,
                "distributed_backend": self.dist.backend,
                "chosen": self.chosen,
            }
            atomic_write_json(self.run_dir / "config.json", record)
        distributed.barrier(self.dist)

    def _restore(self) -> None:
        ckpts = self.checkpoints
        if self.dist.is_main:
            ckpts.remove_temporaries()  # a write killed half-way
            ckpts.reconcile()  # pointers written before a kill that disagree with the metadata
        if ckpts.resolve("last") is None:
            return  # killed before the first checkpoint: start again from step 0
        weights, state, meta = ckpts.load("last")
        if "optimizers" not in meta:
            raise CheckpointError(
                f"{self.ckpt_root} was written by an older pixelzoo whose checkpoints cannot be "
                f"resumed by this one; its weights still load for sampling and evaluation"
            )
        try:
            load_weights(self.eval_model, weights, self.ckpt_root)
            if self.ema is not None:  # the checkpoint's model weights are the average
                raw = {k[len(RAW) :]: v for k, v in state.items() if k.startswith(RAW)}
                load_weights(self.model, raw, self.ckpt_root)
            for name, opt in self.optimizers.items():
                optimizer_from_flat(opt, state, meta["optimizers"][name], name)
            torch.set_rng_state(state["rng.torch"])
            if "rng.cuda" in state and self.device.startswith("cuda"):
                torch.cuda.set_rng_state(state["rng.cuda"], self.device)
            self.step = int(meta["step"])
            self.seconds.update(meta.get("seconds", {}))
            self.seconds["training"] = float(meta["elapsed"])
            self.last_cost.update(meta.get("last_cost", {}))
            if meta.get("loss_scale") and self.scaler.is_enabled():
                self.scaler.load_state_dict(meta["loss_scale"])
            decided = meta.get("compile")
            if self.cfg.compile is None and self.compiles and decided is not None:
                self.compile_on = bool(decided)  # what the steps since the decision ran
                self.chosen.update(compile=self.compile_on,
                                   compile_reason=f"kept: {meta.get('compile_reason')}")  # fmt: skip
            best = meta.get("best_valid", meta.get("best_valid_nats"))
            self.best = math.inf if best is None else float(best)
            self.window = meta["window"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"checkpoint {self.ckpt_root}/{ckpts.resolve('last')} is incomplete "
                f"({type(e).__name__}: {e}); it cannot be resumed"
            ) from None
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
                flat, opt_meta[name] = optimizer_to_flat(opt, name)
                tensors.update(flat)
            tensors["rng.torch"] = torch.get_rng_state()
            if self.ema is not None:
                tensors.update({RAW + k: v for k, v in self.model.state_dict().items()})
            if self.device.startswith("cuda"):
                tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
            best_value = self.best if math.isfinite(self.best) else None
            meta = {
                "epoch": self.step / self.steps_per_epoch,
                "best_key": self.best_key,
                "best_valid": best_value,
                "elapsed": self.elapsed,
                "seconds": {**self.seconds, "wall": self.wall},
                "last_cost": self.last_cost,
                "compile": self.compile_on,
                "compile_reason": self.chosen["compile_reason"],
                "loss_scale": self.scaler.state_dict(),  # float16's scaler ({} otherwise)
                "window": self.window,
                "optimizers": opt_meta,
                "model": self.model_spec(),
                **self.progress_state(),
            }
            self.checkpoints.save(
                self.step,
                self.eval_model.state_dict(),
                tensors,
                meta,
                best=best,
                best_extra={f"valid_{self.best_key}": best_value},
            )
        distributed.barrier(self.dist)

    @property
    def elapsed(self) -> float:
        """Seconds of training steps so far, across resumes."""
        return self.seconds["training"]

    @property
    def wall(self) -> float:
        """Wall seconds of the training loop so far, across resumes."""
        live = 0.0 if self._wall_from is None else time.perf_counter() - self._wall_from
        return self.seconds["wall"] + live

    @contextlib.contextmanager
    def timed(self, what: str):
        """Count the block's seconds as ``what`` (validation, samples, checkpoints)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            dt = time.perf_counter() - t0
            self.seconds[what] += dt
            self.last_cost[what] = dt

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are validated, sampled and saved: the average if ``ema`` is set."""
        return self.ema if self.ema is not None else self.model

    # ------------------------------------------------------------------ steps
    def lr_at(self, step: int) -> float:
        cfg = self.cfg
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.lr_schedule == "cosine":
            return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step / self.total_steps, 1)))
        return cfg.lr * warm * cfg.lr_decay**step

    def _batch(self, step: int):
        epoch, pos = divmod(step, self.steps_per_epoch)
        perm = torch.randperm(len(self.train_set), generator=seeded(self.cfg.seed, epoch))
        b = self.cfg.batch_size
        idx = perm[pos * b : (pos + 1) * b]
        # Binarize the whole global batch, then take this rank's share: the images
        # are then identical to a single-process run's. The share is every world-th
        # image (not a contiguous block) so that statistics over strided groups of a
        # batch, as the Progressive GAN's minibatch standard deviation, see one
        # process's groups.
        x, y = self.train_set.get_batch(idx, seeded(self.cfg.seed, 7919, step))
        local = slice(self.dist.rank, None, self.dist.world_size)
        x = x[local].to(self.device, non_blocking=True)
        if self.cfg.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.model.uses_labels:
            return x, y[local].to(self.device)
        return x

    def _forward_backward(self, batch) -> torch.Tensor:
        """Loss of this process's batch and its gradients, in micro-batches if asked.

        Chunk k's loss is weighted by its share of the batch, so the accumulated
        gradient is that of the whole batch's mean loss. DDP synchronises
        gradients only on the last chunk.
        """
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
                with self.autocast():
                    loss = self._objective(chunk) * (min(size, n - start) / n)
                self.scaler.scale(loss).backward()
            total += loss.detach().float()
        return total

    def autocast(self):
        """The training steps' autocast (:func:`choose_amp`; disabled in float32)."""
        device_type = torch.device(self.device).type
        return torch.autocast(device_type, dtype=self.amp_dtype, enabled=self.amp)

    def _objective(self, chunk) -> torch.Tensor:
        """The objective's loss of ``chunk``; if Inductor cannot build the compiled step,
        the run says why in one sentence and goes on eagerly."""
        try:
            return self.objective(chunk)
        except Exception as e:
            if not (self.compile_on and compiling.is_compile_failure(e)):
                raise
            why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            self.set_compile(False, f"compiling failed at step {self.step} ({why}); eager")
            if self.dist.is_main:
                warnings.warn(f"torch.compile could not build the training step ({why}); "
                              "training goes on eagerly", stacklevel=2)  # fmt: skip
            return self.objective(chunk)

    def set_compile(self, on: bool, why: str) -> None:
        """Compile the step from now on (or not), and say so: a "compile" metrics record
        and config.json's "chosen" (the checkpoints keep it for a resumed run)."""
        self.compile_on = on
        self.objective = compiling.compiled(self.eager_objective) if on else self.eager_objective
        self.chosen.update(compile=on, compile_reason=why)
        self.log.write({"split": "compile", "step": self.step, "compile": on, "reason": why})
        if self.dist.is_main:
            config = dict(Run(self.run_dir).config)
            config["chosen"] = {**config.get("chosen", {}), "compile": on, "compile_reason": why}
            atomic_write_json(self.run_dir / "config.json", config)
            if on:
                tqdm.write(f"compile: compiling the training step ({why}); the next step "
                           "waits for the compiler", file=sys.stderr)  # fmt: skip

    def decide_compile(self, seconds_left: float) -> None:
        """The automatic choice, once the first steps are timed (every process agrees)."""
        if self.compile_on is not None:
            return
        seconds_left = distributed.all_max(seconds_left, self.dist, self.device)
        self.set_compile(*compiling.choose_compile(self.cfg.compile, self.device, seconds_left,
                                                   self.dist.enabled))  # fmt: skip

    def train_step(self) -> dict[str, float]:
        """One training step (every optimizer steps once); returns the scalars to log."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = self.lr_at(self.step)
        scalars = self.update(self._batch(self.step))
        if self.ema is not None:
            self._update_average()
        if self.scaler.is_enabled():
            scalars["loss_scale"] = self.scaler.get_scale()  # the scale this step used
        self.scaler.update()  # float16's loss scale, once a step (a no-op otherwise)
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
        self.scaler.unscale_(optimizer)  # float16: the true gradients, before clipping
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        vals = torch.stack([loss.detach().float(), grad_norm.detach().float()])
        if self.dist.enabled:
            torch.distributed.all_reduce(vals)
            vals /= self.dist.world_size
        loss_v, norm_v = vals.tolist()
        overflow = self.scaler.is_enabled() and self.scaler.get_scale() > 1
        if overflow and math.isfinite(loss_v) and not math.isfinite(norm_v):
            # float16's scaled gradients overflowed: the scaler skips this step and
            # halves the scale (the step counts; its gradient norm is not logged)
            self.scaler.step(optimizer)
            optimizer.zero_grad(set_to_none=True)
            return loss_v, None
        if not (math.isfinite(loss_v) and math.isfinite(norm_v)):
            for opt in self.optimizers.values():
                opt.zero_grad(set_to_none=True)
            kept = self.checkpoints.step("last")
            where = f"the {what} became {loss_v} (gradient norm {norm_v}) at step {self.step + 1}"
            if kept is None:
                raise TrainingDiverged(
                    f"{where}, before the first checkpoint, so there is nothing to resume; start "
                    f"again with a lower --lr or a smaller --set grad_clip"
                )
            raise TrainingDiverged(
                f"{where}; stopped without saving, the last good checkpoint (step {kept}) in "
                f"{self.ckpt_root} is untouched: resume it with a lower --lr (pixelzoo train "
                f"--resume {self.run_dir} --lr LR) or a smaller --set grad_clip"
            )
        self.scaler.step(optimizer)  # optimizer.step(), unless float16 overflowed
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

    # ------------------------------------------------------------------ validation
    def validate(self) -> dict:
        """Validation NLL (exact or a bound, per ``nats_kind``); empty for a model without one."""
        kind = getattr(self.model, "nats_kind", None)
        if kind is None:
            return {}
        n = len(self.valid_set)
        nats = distributed.all_sum(self._valid_nll(n), self.dist, self.device) / n
        return {
            "nats": nats,
            "bits_per_dim": bits_per_dim(nats, self.model.dims),
            "nats_kind": kind,
            "images": n,
        }

    def _valid_nll(self, n: int) -> float:
        """This process's share of the NLL sum of the first ``n`` validation images, with
        random numbers of its own (the training's are left as they were)."""
        idx = torch.arange(n)[self.dist.rank :: self.dist.world_size]
        cuda = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(self.cfg.seed + VALID_SEED)
            return nll_sum(self.eval_model, self.valid_set, idx, self.cfg.eval_batch_size)

    def plan_validation(self, step_seconds: float) -> str:
        """Time one batch of validation and size the validation subset to ``valid_share``
        (see :mod:`.budget`); returns what the budget line says of it."""
        self.validation_planned = True
        cfg, period = self.cfg, self.steps_per_epoch * self.cfg.valid_every
        wall_budget = None if cfg.minutes is None else 60 * cfg.minutes
        steps = self.total_steps
        if wall_budget is not None:
            more = max(0.0, wall_budget - self.wall) / max(step_seconds, 1e-9)
            steps = min(steps or math.inf, self.step + more)
        self.expected_validations = max(1, math.ceil((steps - self.step) / period))
        sized = cfg.valid_share < 1 and cfg.valid_images is None
        if getattr(self.model, "nats_kind", None) is None:
            return ""
        if self.last_cost["validation"] is not None:  # resumed: measured before
            return ""
        if not (sized or cfg.minutes):
            return ""  # nothing to size and no end to reserve time for
        available = len(self.valid_set)
        per_process = min(cfg.eval_batch_size, budget.PROBE_IMAGES)
        probe = min(available, per_process * self.dist.world_size)
        t0 = time.perf_counter()
        self._valid_nll(probe)
        took = distributed.all_max(time.perf_counter() - t0, self.dist, self.device)
        self.seconds["validation"] += took
        per_image = took / probe
        if not sized:
            self.valid_estimate = per_image * available
            return f"validation: {available:,} images, about {self.valid_estimate:.1f} s each time"
        allowance, expected = budget.validation_allowance(
            cfg.valid_share, step_seconds, period, self.total_steps, wall_budget, took
        )
        n = budget.subset_size(allowance, per_image, available, probe)
        self.valid_estimate = per_image * n
        self.expected_validations = expected
        info = {"images": n, "of": available, "valid_share": cfg.valid_share,
                "allowance_seconds": allowance, "validations_expected": expected,
                "seconds_per_image": per_image}  # fmt: skip
        self._fix_validation_subset(n, info)
        share = f"{cfg.valid_share:.0%} share"
        if n == available:
            return (f"validation: all {n:,} images fit the {share} (about "
                    f"{self.valid_estimate:.1f} s each, {expected} expected)")  # fmt: skip
        return (f"validation: a fixed subset of {n:,} of the {available:,} images fits the "
                f"{share} (about {self.valid_estimate:.1f} s each, {expected} expected); the best "
                "checkpoint is the best on it, evaluate scores the whole split")  # fmt: skip

    def _fix_validation_subset(self, n: int, info: dict) -> None:
        """Validate on the first ``n`` images of the seeded permutation from now on, and
        say so in ``config.json`` (a resumed run's plan then takes the same images)."""
        if n < len(self.valid_set):
            self.valid_set = self.valid_set.fixed_subset(n, self.cfg.seed)
        self.cfg = dataclasses.replace(self.cfg, valid_images=n)
        if self.dist.is_main:
            config = dict(Run(self.run_dir).config)
            config["train"] = {**config["train"], "valid_images": n}
            config["data"] = {**config["data"], "valid_images": n, "valid_subset": info}
            atomic_write_json(self.run_dir / "config.json", config)
            self.log.write({"split": "valid_subset", "step": self.step, **info})

    def validation_fits(self) -> bool:
        """Whether a validation between epochs keeps validation within its share."""
        cost = self.last_cost["validation"]
        cost = self.valid_estimate if cost is None else cost
        if cost is None or self.cfg.valid_share >= 1:
            return True
        if self.cfg.minutes is not None:
            projected = 60 * self.cfg.minutes
        else:
            step_s = self.elapsed / max(self.step, 1)
            projected = self.wall + 2 * cost + (self.total_steps - self.step) * step_s
        fits = budget.validation_fits(
            self.cfg.valid_share, self.seconds["validation"], cost, projected
        )
        return distributed.all_max(float(not fits), self.dist, self.device) == 0.0

    def write_samples(self) -> None:
        if not self.cfg.samples or not self.dist.is_main:
            return
        epoch = self.step // self.steps_per_epoch
        g = seeded(self.cfg.seed, 104729, epoch)
        x, nrow = self.eval_model.preview(self.cfg.samples, self.valid_set, g)
        if x is not None:
            path = self.run_dir / "samples" / f"step-{self.step:08d}.png"
            save_grid(x, self.model.levels, path, nrow=nrow)
            self.log.image("samples", make_grid(x, self.model.levels, nrow), self.step)

    def end_of_epoch(self, final: bool = False) -> dict:
        """Validate (unless, between epochs, that would overrun ``valid_share``), write the
        sample grid and a checkpoint; returns the validation figures (empty if none)."""
        epoch = self.step / self.steps_per_epoch
        if not final and not self.validation_fits():
            self.log.write({"split": "valid_skipped", "step": self.step, "epoch": epoch,
                            **self.time_fields()})  # fmt: skip
            with self.timed("checkpoints"):
                self._save(best=False)
            return {}
        with self.timed("validation"):
            v = self.validate()
        improved = bool(v) and v[self.best_key] < self.best
        if v:
            self.best = min(self.best, v[self.best_key])
            self.log.write({"split": "valid", "step": self.step, "epoch": epoch,
                            **self.time_fields(), **v, f"best_{self.best_key}": self.best})  # fmt: skip
        with self.timed("samples"):
            self.write_samples()
        with self.timed("checkpoints"):
            self._save(best=improved)
        return v

    def time_fields(self) -> dict:
        """The time so far, as metrics fields: training steps, validation, wall."""
        return {"train_seconds": self.elapsed, "valid_seconds": self.seconds["validation"],
                "wall_seconds": self.wall}  # fmt: skip

    def time_record(self) -> dict:
        """The run's time, split: the last record of a run that stopped normally."""
        s = {**self.seconds, "wall": self.wall}
        counted = s["training"] + s["validation"] + s["samples"] + s["checkpoints"]
        return {"split": "time", "step": self.step, "train_seconds": s["training"],
                "valid_seconds": s["validation"], "samples_seconds": s["samples"],
                "checkpoint_seconds": s["checkpoints"], "other_seconds": max(0.0, s["wall"] - counted),
                "wall_seconds": s["wall"], "valid_share": self.cfg.valid_share,
                "valid_images": len(self.valid_set)}  # fmt: skip

    def after_training(self) -> None:
        """Hook: runs once training has stopped normally, with the metrics log still open."""

    # ------------------------------------------------------------------ loop
    @property
    def finished(self) -> bool:
        """The steps or epochs are done, or the wall time and what the end costs reach
        ``minutes`` (every process agrees: the slowest one's clock decides)."""
        if self.total_steps is not None and self.step >= self.total_steps:
            return True
        if self.cfg.minutes is None:
            return False
        valid = self.last_cost["validation"]
        if valid is None:  # not yet measured: the timed batch's estimate, with its margin
            valid = (self.valid_estimate or 0.0) / budget.MARGIN
        reserve = valid + self.last_cost["samples"] + self.last_cost["checkpoints"]
        over = self.wall + reserve >= 60 * self.cfg.minutes
        return distributed.all_max(float(over), self.dist, self.device) > 0

    def fit(self) -> dict:
        """Train until a stopping criterion; returns the last validation result.

        ``already_finished`` is True when a resumed run had nothing left to do.
        """
        cfg, spe = self.cfg, self.steps_per_epoch
        if self.finished:
            self.log.close()
            return {
                "step": self.step,
                "valid": {},
                "best_valid": self.best,
                "already_finished": True,
            }
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
        measured = []  # the first steps' seconds, for the budget line
        self._wall_from = time.perf_counter()
        try:
            done = False
            while not done:
                t0 = time.perf_counter()
                scalars = self.train_step()
                dt = time.perf_counter() - t0
                self.seconds["training"] += dt
                if len(measured) <= budget.STEPS:
                    measured.append(dt)
                done = self.finished
                if not self.validation_planned and (len(measured) > budget.STEPS or done):
                    seconds = measured[1:] or measured
                    said = self.plan_validation(sum(seconds) / len(seconds))
                    self.say_budget(seconds, said)
                    done = self.finished
                if self.compile_on is None and self.step > budget.STEPS and not done:
                    # at one global step, so that a run resumed before it decides alike
                    self.decide_compile(self.step_seconds_left(measured[1:] or measured))
                w = self.window
                for k, v in scalars.items():
                    if v is not None:  # None: not measured this step (a skipped float16 step)
                        w["sums"][k] = w["sums"].get(k, 0.0) + v
                        counts = w.setdefault("counts", {})  # not in older checkpoints
                        counts[k] = counts.get(k, w["steps"]) + 1
                w["steps"] += 1
                w["images"] += cfg.batch_size
                w["seconds"] += dt
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    self._log_window()
                    bar.set_postfix(self.postfix(self.log_record))
                if self.step % (spe * cfg.valid_every) == 0 or done:
                    last_valid = self.end_of_epoch(final=done) or last_valid
                elif self.step % cfg.ckpt_every == 0:
                    with self.timed("checkpoints"):
                        self._save(best=False)
            self.after_training()
            self.log.write(self.time_record())
        finally:
            self.seconds["wall"], self._wall_from = self.wall, None
            bar.close()
            self.log.close()
        return {"step": self.step, "valid": last_valid, "best_valid": self.best,
                "seconds": dict(self.seconds), "valid_images": len(self.valid_set)}  # fmt: skip

    def say_budget(self, seconds: list[float], validation: str = "") -> None:
        """One line (and a metrics record): throughput, epochs the budget covers, and a
        preset that would fit when it covers less than one (see :mod:`.budget`)."""
        if not self.dist.is_main:
            return
        cfg = self.cfg
        left = None if self.total_steps is None else self.total_steps - self.step
        ips = cfg.batch_size * len(seconds) / max(sum(seconds), 1e-9)
        said = budget.budget_line(
            cfg,
            self.model,
            len(self.train_set),
            ips,
            self.budget_seconds_left(),
            left,
            validation,
            f"{self.chosen['amp_dtype']} autocast" if self.amp else "float32",
        )
        tqdm.write(said.line, file=sys.stderr)
        self.log.write(said.record(self.step))

    def budget_seconds_left(self) -> float | None:
        """The training-step seconds a ``minutes`` budget leaves once the expected
        validations are set aside (None: no time budget)."""
        if self.cfg.minutes is None:
            return None
        validations = self.expected_validations * (self.valid_estimate or 0.0)
        return max(0.0, 60 * self.cfg.minutes - self.wall - validations)

    def step_seconds_left(self, seconds: list[float]) -> float:
        """The seconds of training steps still to run at the pace of ``seconds``."""
        left = math.inf
        if self.total_steps is not None:
            left = (self.total_steps - self.step) * sum(seconds) / len(seconds)
        budget_left = self.budget_seconds_left()
        return left if budget_left is None else min(left, budget_left)

    def _log_window(self) -> None:
        w = self.window
        counts = w.get("counts", {})
        means = {k: v / counts.get(k, w["steps"]) for k, v in w["sums"].items()}
        record = {"split": "train", "step": self.step, "epoch": self.step / self.steps_per_epoch}
        record.update(self.time_fields())  # training-step time (across resumes) and wall
        record.update(means)
        if getattr(self.model, "nats_kind", None) is not None:  # the loss is nats per sub-pixel
            record["bits_per_dim"] = means["loss"] / math.log(2)
        record["lr"] = self.lr_at(self.step - 1)
        record["images_per_s"] = w["images"] / max(w["seconds"], 1e-9)
        record.update(self.progress_state())
        self.log.write(record)
        self.log_record = record
        self.window = self._empty_window()

    def postfix(self, record: dict) -> dict:
        """What the progress bar shows after each logged window: the loss and the time
        split (training / validation of the wall time so far)."""
        if "bits_per_dim" in record:
            return {"bpd": f"{record['bits_per_dim']:.4f}", **self.time_postfix(record)}
        return {"loss": f"{record['loss']:.4f}", **self.time_postfix(record)}

    @staticmethod
    def time_postfix(record: dict) -> dict:
        """The share of the wall time so far spent in training steps and in validation."""
        wall = max(record["wall_seconds"], 1e-9)
        return {"time": f"train {record['train_seconds'] / wall:.0%} "
                        f"valid {record['valid_seconds'] / wall:.0%}"}  # fmt: skip

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        distributed.teardown(self.dist)
