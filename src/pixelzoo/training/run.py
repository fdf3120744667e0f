"""Loading a trained run: its config and a model with checkpoint weights."""

from __future__ import annotations

import json
from pathlib import Path

from pixelzoo import data as datasets
from pixelzoo import models
from pixelzoo.errors import CheckpointError
from pixelzoo.training import checkpoint


def read_config(run_dir) -> dict:
    path = Path(run_dir) / "config.json"
    if not Path(run_dir).is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist")
    if not path.exists():
        raise CheckpointError(f"{run_dir} is not a pixelzoo run (no config.json)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} is corrupt (not JSON)") from None


def load_model(run_dir, which: str = "best", device: str = "cpu"):
    """The run's model with weights from checkpoint ``which`` ("best" falls back to "last")."""
    cfg = read_config(run_dir)
    if cfg.get("kind") == "evaluator":
        raise CheckpointError(
            f"{run_dir} is an evaluator classifier (pixelzoo train-evaluator), not a generative model"
        )
    spec = cfg["model"]
    model = models.build(spec["name"], spec["image_shape"], spec["levels"], **spec["config"])
    root = Path(run_dir) / "checkpoints"
    if which == "best" and checkpoint.pointer(root, "best") is None:
        which = "last"
    weights, _, _ = checkpoint.load(root, which, with_state=False)
    checkpoint.load_weights(model, weights, root)
    return model.to(device).eval()


def load_split(run_dir, split: str, data_dir=None, dataset: str | None = None):
    """Split ``split`` of the run's dataset (or of ``dataset``, with the run's options)."""
    train = read_config(run_dir)["train"]
    name = dataset or train["data"]
    opts = train["data_options"] if name == train["data"] else {}
    return datasets.load(name, split, data_dir or train["data_dir"], **opts)
