"""Scalars to ``metrics.jsonl`` (readable without TensorBoard) and to TensorBoard."""

from __future__ import annotations

import json
import time
from pathlib import Path

from pixelzoo.utils.io import atomic_write_bytes


class MetricsLog:
    """Append-only JSONL metrics, truncated to ``purge_step`` when a run resumes.

    Records after the checkpoint a run resumes from are dropped (the resumed run
    writes them again), so the file reads as if the run was never interrupted.
    """

    def __init__(self, run_dir: Path, enabled: bool, purge_step: int = 0):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if self.path.exists():
            kept = []
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
                if rec.get("step", 0) <= purge_step:
                    kept.append(line)
            atomic_write_bytes(self.path, "".join(k + "\n" for k in kept).encode())
        self._file = open(self.path, "a")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=purge_step or None)
        except ImportError:  # tensorboard is a dependency, but keep training without it
            self.tb = None

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        record = {**record, "time": time.time()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self.tb is not None:
            split, step = record["split"], record["step"]
            for k, v in record.items():
                if k not in ("split", "step", "time", "epoch") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self._file.close()
            if self.tb is not None:
                self.tb.close()


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
