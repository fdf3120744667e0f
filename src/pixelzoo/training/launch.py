"""From names to a running trainer: resolve a run, take its folder's lock, train, clean up.

:func:`plan` resolves a :class:`TrainConfig` once, in the library: it loads the
data, fills the family's training defaults, builds the model and says what the
run's ``config.json`` will hold. ``pixelzoo train --dry-run`` prints exactly
that, and :func:`train` runs exactly that.

:func:`launch` is the one way a run folder is opened for writing: the
exclusive lock first (a second process is refused, naming the holder), then
the check that a fresh run does not overwrite another, then training. A fresh
run that fails before its first checkpoint (bad data, a refused setting, a
NaN at step 1, Ctrl-C) removes everything it wrote, so the same ``--out``
can be used again at once.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import pixelzoo
from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import CheckpointError, ConfigError
from pixelzoo.models.adversarial import AdversarialModel
from pixelzoo.runs import Checkpoints, Run, RunLock, stopped
from pixelzoo.runs.lock import LOCK_NAME
from pixelzoo.training import distributed
from pixelzoo.training.adversarial import AdversarialTrainer
from pixelzoo.training.config import TrainConfig
from pixelzoo.training.trainer import Trainer
from pixelzoo.utils.io import atomic_write_json

# What a run writes into its folder; a fresh run that fails early removes these.
RUN_FILES = ("config.json", "metrics.jsonl", "tb", "wandb", "samples", "checkpoints", LOCK_NAME)


@dataclass
class Plan:
    """A resolved run: its settings, model, data, and the ``config.json`` a fresh run writes."""

    cfg: TrainConfig
    model: nn.Module
    train_set: object
    valid_set: object
    record: dict

    def trainer(self, run_dir, *, resume: bool = False, progress: bool = True) -> Trainer:
        """The trainer of this plan (its class chosen by the model) for ``run_dir``.

        The caller holds the folder's lock (:func:`launch` does).
        """
        record = None if resume else self.record
        return trainer_class(self.model)(
            self.model, self.train_set, self.valid_set, self.cfg, run_dir,
            record=record, resume=resume, progress=progress,
        )  # fmt: skip

    def summary(self) -> dict:
        """What ``--dry-run`` prints: the record, plus the parameter count."""
        params = sum(p.numel() for p in self.model.parameters())
        record = {k: v for k, v in self.record.items() if k != "run_id"}  # drawn per run
        return {**record, "parameters": params}


def trainer_class(model: nn.Module) -> type[Trainer]:
    """The trainer for a model: adversarial models have their own update."""
    return AdversarialTrainer if isinstance(model, AdversarialModel) else Trainer


def data_record(train_set, valid_set) -> dict:
    return {
        "name": train_set.name,
        "image_shape": list(train_set.image_shape),
        "levels": train_set.levels,
        "train_images": len(train_set),
        "valid_images": len(valid_set),
        **({"classes": list(train_set.classes)} if train_set.classes else {}),
    }


def _num_classes(cfg: TrainConfig, train_set, valid_set) -> int:
    for split in (train_set, valid_set):
        if split.labels is None:
            raise ConfigError(
                f"--cond class needs labelled data; dataset {cfg.data!r} ({split.split}) has no labels"
            )
    return int(train_set.num_classes or int(train_set.labels.max()) + 1)


def plan(cfg: TrainConfig, *, saved_model: dict | None = None) -> Plan:
    """Resolve ``cfg``: data loaded, training defaults filled, the model built (seeded).

    Args:
        cfg: the requested settings (not modified).
        saved_model: a resumed or replayed run's full model settings; the model is
            rebuilt from them rather than from its preset's name, so that a preset
            edited since cannot change the network.
    """
    cfg = dataclasses.replace(
        cfg, overrides=dict(cfg.overrides), data_options=dict(cfg.data_options)
    ).validate()
    entry = models.get(cfg.model)
    datasets.options(cfg.data)  # an unknown dataset name is one sentence
    train_set = datasets.load(cfg.data, "train", cfg.data_dir, **cfg.data_options)
    valid_set = datasets.load(cfg.data, "valid", cfg.data_dir, **cfg.data_options)
    valid_of = len(valid_set)
    if cfg.valid_images is not None and cfg.valid_images < valid_of:
        valid_set = valid_set.fixed_subset(cfg.valid_images, cfg.seed)
    cfg.resolve_defaults(entry.cls.train_defaults)
    settings = dict(saved_model if saved_model is not None else cfg.overrides)
    if cfg.cond == "class" and saved_model is None:
        settings["num_classes"] = _num_classes(cfg, train_set, valid_set)
    torch.manual_seed(cfg.seed)
    model = models.build(cfg.model, train_set.image_shape, train_set.levels, cfg.preset, **settings)
    kind = model.cond_kind
    if kind not in (None, "class") and not model.cond_optional:
        raise ConfigError(
            f"model {cfg.model!r} is conditioned on {kind} input, which no dataset provides; "
            "train it from Python, or use --cond class"
        )
    record = {
        "run_id": uuid.uuid4().hex[:16],
        "train": dataclasses.asdict(cfg),
        "model": model.spec(),
        "data": {**data_record(train_set, valid_set), "valid_images_of": valid_of},
        "versions": {"pixelzoo": pixelzoo.__version__, "torch": torch.__version__},
    }
    return Plan(cfg, model, train_set, valid_set, record)


def _remove_unstarted(run_dir: Path, before: set[str] | None) -> None:
    """Remove what a fresh run wrote, if it never reached a checkpoint."""
    try:
        if Checkpoints(run_dir / "checkpoints").resolve("last") is not None:
            return  # resumable: keep it
    except CheckpointError:
        return
    for name in RUN_FILES:
        path = run_dir / name
        if before is not None and name in before:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink(missing_ok=True)
    if before is None:
        try:
            run_dir.rmdir()  # only if empty
        except OSError:
            pass


def launch(run_dir, make_trainer, *, fresh: bool, resume_hint: bool = True) -> dict:
    """Lock ``run_dir``, build the trainer with ``make_trainer()``, train; see the module docstring."""
    run_dir = Path(run_dir)
    main = distributed.env_rank() == 0
    before = set(os.listdir(run_dir)) if run_dir.is_dir() else None
    lock = RunLock(run_dir) if main else None
    trainer, started = None, False
    try:
        if lock is not None:
            lock.acquire()
        if fresh and (run_dir / "config.json").exists():
            hint = f"resume it with --resume {run_dir} or " if resume_hint else ""
            raise ConfigError(f"{run_dir} already holds a run; {hint}choose a new --out folder")
        started = True
        trainer = make_trainer()
        result = trainer.fit()
        result["run_dir"] = run_dir
        return result
    except BaseException:
        if fresh and main and started:
            if trainer is not None:
                trainer.close()
                trainer = None
            _remove_unstarted(run_dir, before)
        raise
    finally:
        if trainer is not None:
            trainer.close()
        if lock is not None:
            lock.release()


def train(cfg: TrainConfig, run_dir, *, resume: bool = False, progress: bool = True) -> dict:
    """Train a new run into ``run_dir`` (or resume it; see :func:`resume_run`).

    With ``resume=True`` the settings of ``cfg`` that differ from the defaults are
    the changes asked for (e.g. ``TrainConfig(steps=500)`` extends the run).
    """
    if resume:
        return resume_run(run_dir, cfg.changed_fields(), progress=progress)

    return launch(run_dir, lambda: plan(cfg).trainer(run_dir, progress=progress), fresh=True)


def train_to_budget(
    cfg: TrainConfig, run_dir, *, threads: int | None = None, progress: bool = False
) -> str:
    """Train ``run_dir`` to the budget of ``cfg``: fresh, resumed after an interruption, or
    left alone when its training already stopped normally. Returns the folder."""
    if threads is not None:
        torch.set_num_threads(threads)
    run_dir = Path(run_dir)
    if not stopped(run_dir):
        train(cfg, run_dir, resume=(run_dir / "config.json").exists(), progress=progress)
    return str(run_dir)


def train_side_by_side(jobs, *, processes: int = 2, threads: int = 1) -> list[str]:
    """Train several ``(cfg, run_dir)`` runs to their budgets, ``processes`` at once.

    Each run trains in a process of its own (spawned: no state shared with the caller)
    with ``threads`` threads, so that runs compared at an equal budget get the same share
    of the machine (two single-thread runs on two cores). Runs already at their budget are
    left as they are, interrupted ones resume: a benchmark can be stopped and started again.
    """
    jobs = list(jobs)
    if processes <= 1:
        return [train_to_budget(cfg, run, threads=threads) for cfg, run in jobs]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [pool.submit(train_to_budget, cfg, run, threads=threads) for cfg, run in jobs]
        return [f.result() for f in futures]


def resume_run(
    run_dir, changes: dict | None = None, *, sets: list[str] = (), progress: bool = True
) -> dict:
    """Continue the run in ``run_dir`` from its last checkpoint.

    ``changes`` (and ``sets``, ``--set KEY=VALUE`` pairs) are settings to change
    from here on (stopping criteria, learning rate, logging:
    :attr:`TrainConfig.RESUMABLE`); each change is recorded in ``config.json``
    ("changes") and ``metrics.jsonl`` at the step it takes effect. Settings that
    define the run (model, data, seed, batch size...) are refused in one sentence.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").exists():
        raise ConfigError(f"cannot resume: {run_dir} has no config.json (not a pixelzoo run)")

    def make():
        run = Run(run_dir)
        if run.kind != "model":
            raise ConfigError(
                f"{run_dir} is an evaluator classifier; train a new one with pixelzoo "
                "train-evaluator (it takes minutes)"
            )
        saved = TrainConfig.from_dict(run.train)
        delta = saved.changes_for_resume({**(changes or {}), **saved.parse_sets(list(sets))})
        cfg = dataclasses.replace(saved, **{k: new for k, (_, new) in delta.items()})
        p = plan(cfg, saved_model=run.model_spec["config"])
        trainer = p.trainer(run_dir, resume=True, progress=progress)
        if delta and trainer.dist.is_main:
            _record_changes(run, trainer, p.cfg, delta)
        return trainer

    return launch(run_dir, make, fresh=False)


def _record_changes(run: Run, trainer: Trainer, cfg: TrainConfig, delta: dict) -> None:
    changed = {k: {"from": old, "to": new} for k, (old, new) in delta.items()}
    config = dict(run.config)
    config["train"] = dataclasses.asdict(cfg)
    config["changes"] = [
        *config.get("changes", []),
        {"step": trainer.step, "time": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": changed},
    ]
    atomic_write_json(run.path / "config.json", config)
    trainer.log.write({"split": "resume", "step": trainer.step, "changed": changed})


__all__ = ["Plan", "launch", "plan", "resume_run", "train", "trainer_class"]
