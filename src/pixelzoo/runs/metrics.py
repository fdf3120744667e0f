"""Scalars to ``metrics.jsonl`` (readable without TensorBoard) and to TensorBoard, which
also gets the sample grids as images and the run's settings as hyper-parameters
(its HPARAMS tab, beside the final validation figures); optionally the same to
Weights & Biases (``logger=wandb``).

NOTE: a W&B run takes only increasing steps, so after a resume it drops the records
of the steps it already has (up to the interrupted run's last record) and keeps the
rest; metrics.jsonl and TensorBoard are rewound exactly.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path

from pixelzoo.errors import ConfigError, WriteError
from pixelzoo.utils.interrupts import import_held
from pixelzoo.utils.io import atomic_write_bytes


class MetricsLog:
    """Append-only JSONL metrics, truncated to ``purge_step`` when a run resumes.

    Records after the checkpoint a run resumes from are dropped (the resumed run
    writes them again), so the file reads as if the run was never interrupted.
    Only the process holding the run's lock writes it.
    """

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int = 0,
                 wandb: dict | None = None):  # fmt: skip
        """``wandb``: also log to a Weights & Biases run, ``{"id", "config"}`` (the
        pixelzoo run's id, so that a resumed run continues the same W&B run)."""
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        self.wandb = None
        self._file = None
        if not enabled:
            return
        if wandb is not None:
            self.wandb = start_wandb(Path(run_dir), **wandb)
        if self.path.exists():
            kept = [json.dumps(r) for r in read_metrics(run_dir) if r.get("step", 0) <= purge_step]
            atomic_write_bytes(self.path, "".join(k + "\n" for k in kept).encode())
        try:
            self._file = open(self.path, "a")
        except OSError as e:
            raise WriteError(f"could not open {self.path} ({e.strerror})") from None
        try:
            SummaryWriter = import_held("torch.utils.tensorboard").SummaryWriter
            self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=purge_step or None)
        except ImportError:  # tensorboard is a dependency, but keep training without it
            self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        record = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in {**record, "time": time.time()}.items()
        }
        try:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        except OSError as e:
            raise WriteError(f"could not write {self.path} ({e.strerror})") from None
        split, step = record["split"], record["step"]
        scalars = {f"{split}/{k}": v for k, v in record.items()
                   if k not in ("split", "step", "time", "epoch")
                   and isinstance(v, (int, float)) and not isinstance(v, bool)}  # fmt: skip
        if self.tb is not None:
            try:
                for k, v in scalars.items():
                    self.tb.add_scalar(k, v, step)
            except OSError:  # e.g. a full disk: metrics.jsonl is the record; stop the copy
                self._drop_tensorboard()
        self._to_wandb(scalars, step)

    def image(self, tag: str, grid, step: int) -> None:
        """A uint8 image ``[H, W, C]`` (a sample grid) to TensorBoard (and W&B)."""
        if self.tb is not None:
            try:
                self.tb.add_image(tag, grid, step, dataformats="HWC")
            except OSError:
                self._drop_tensorboard()
        if self.wandb is not None:
            import wandb

            self._to_wandb({tag: wandb.Image(grid[..., 0] if grid.shape[-1] == 1 else grid)}, step)

    def _to_wandb(self, values: dict, step: int) -> None:
        """Log to W&B; a failure there (say the network) stops the copy, not the run."""
        if self.wandb is None or not values:
            return
        try:
            self.wandb.log(values, step=step)
        except Exception as e:  # noqa: BLE001 - W&B's errors are its own; training goes on
            warnings.warn(f"stopped logging to Weights & Biases ({type(e).__name__}: {e})",
                          stacklevel=2)  # fmt: skip
            self._drop_wandb()

    def _drop_wandb(self) -> None:
        run, self.wandb = self.wandb, None
        try:
            run.finish()
        except Exception:  # noqa: BLE001
            pass

    def hparams(self, settings: dict, metrics: tuple[str, ...]) -> None:
        """The run's settings as TensorBoard hyper-parameters, shown with the latest value
        of each scalar tag in ``metrics`` (e.g. ``valid/nats``). Written into this run's
        own event file (``add_hparams`` would start a second run folder)."""
        if self.tb is None:
            return
        from torch.utils.tensorboard.summary import hparams

        values = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v)
                  for k, v in flatten(settings).items() if v is not None}  # fmt: skip
        try:
            for summary in hparams(values, dict.fromkeys(metrics, 0.0)):
                self.tb.file_writer.add_summary(summary)
        except OSError:
            self._drop_tensorboard()

    def _drop_tensorboard(self) -> None:
        tb, self.tb = self.tb, None
        try:
            tb.close()
        except OSError:
            pass

    def close(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass  # a full disk: the records already flushed are kept
            self._file = None
        if self.tb is not None:
            self._drop_tensorboard()
        if self.wandb is not None:
            self._drop_wandb()


def require_wandb():
    """The ``wandb`` module, or one sentence saying how to get it."""
    try:
        return import_held("wandb")
    except ImportError:
        raise ConfigError("logger=wandb needs the wandb package: pip install wandb") from None


def start_wandb(run_dir: Path, id: str, config: dict):
    """A W&B run for the pixelzoo run in ``run_dir`` (project ``$WANDB_PROJECT`` or
    "pixelzoo", named after the folder, its files under ``RUN/wandb``); resumed if
    it exists. ``WANDB_MODE=offline`` keeps it on this machine (``wandb sync`` later)."""
    wandb = require_wandb()
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "pixelzoo"), id=id, name=run_dir.name,
        dir=str(run_dir), config=flatten(config), resume="allow",
    )  # fmt: skip


def read_metrics(run_dir) -> list[dict]:
    """The records of ``RUN/metrics.jsonl`` (none if it is absent); a line cut short by a kill is skipped."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def stopped(run_dir) -> bool:
    """Whether the run's training stopped normally (its last record is the time record)
    and has not been resumed since."""
    records = read_metrics(run_dir)
    return bool(records) and records[-1].get("split") == "time"


def trained_seconds(run_dir) -> float:
    """Training-step seconds of the run's last checkpoint's log (0 before its first checkpoint)."""
    if not (Path(run_dir) / "checkpoints" / "last.json").exists():
        return 0.0
    return max((r.get("train_seconds") or 0.0 for r in read_metrics(run_dir)), default=0.0)


def flatten(d: dict, prefix: str = "") -> dict:
    """A nested dict as one level, keys joined with dots: ``{"model.config.blocks": 15}``."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out
