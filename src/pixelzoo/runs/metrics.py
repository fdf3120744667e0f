"""Scalars to ``metrics.jsonl`` (readable without TensorBoard) and to TensorBoard, which
also gets the sample grids as images and the run's settings as hyper-parameters
(its HPARAMS tab, beside the final validation figures)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from pixelzoo.errors import WriteError
from pixelzoo.utils.interrupts import import_held
from pixelzoo.utils.io import atomic_write_bytes


class MetricsLog:
    """Append-only JSONL metrics, truncated to ``purge_step`` when a run resumes.

    Records after the checkpoint a run resumes from are dropped (the resumed run
    writes them again), so the file reads as if the run was never interrupted.
    Only the process holding the run's lock writes it.
    """

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int = 0):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        self._file = None
        if not enabled:
            return
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
        if self.tb is not None:
            split, step = record["split"], record["step"]
            try:
                for k, v in record.items():
                    if k not in ("split", "step", "time", "epoch") and isinstance(v, (int, float)):
                        self.tb.add_scalar(f"{split}/{k}", v, step)
            except OSError:  # e.g. a full disk: metrics.jsonl is the record; stop the copy
                self._drop_tensorboard()

    def image(self, tag: str, grid, step: int) -> None:
        """A uint8 image ``[H, W, C]`` (a sample grid) to TensorBoard."""
        if self.tb is not None:
            try:
                self.tb.add_image(tag, grid, step, dataformats="HWC")
            except OSError:
                self._drop_tensorboard()

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
