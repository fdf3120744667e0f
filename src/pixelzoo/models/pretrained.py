"""Writing a model in the model-repository layout (``model.save_pretrained(DIR)``).

The layout is the one model hubs already use, so such a folder can be uploaded
as a repository as it is::

    DIR/config.json        {"kind": "model", "model": {name, image_shape, levels, config},
                            "pretrained": {"weights_sha256", "format", ...}, and, when the
                            model comes from a run, the run's "train", "data", "run_id"}
    DIR/model.safetensors  the weights (safetensors: tensors only, nothing to unpickle)
    DIR/README.md          the model card

Reading it is :mod:`pixelzoo.runs.pretrained` (``pixelzoo.from_pretrained``):
such a folder is read as a run whose weights are ``model.safetensors``, so
``pixelzoo sample`` / ``evaluate`` / ``complete`` / ``compress`` take it where
they take a run. Every file is written atomically.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

from safetensors.torch import save

from pixelzoo.errors import InputError
from pixelzoo.utils.io import atomic_write_bytes, atomic_write_json

FORMAT = "pixelzoo-pretrained-1"
WEIGHTS = "model.safetensors"
CARD = "README.md"


def save_pretrained(model, out, *, record: dict | None = None, card: str | None = None) -> Path:
    """Write ``model`` into folder ``out`` (see the module docstring); returns ``out``.

    ``record``: what else ``config.json`` says (a run's training settings, data and
    id, and a ``"pretrained"`` object with its measured figures); ``card``: the
    model card's Markdown (default: a short one from the model's spec).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder to save the model in")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = save(state)
    record = dict(record or {})
    pretrained = dict(record.pop("pretrained", None) or {})
    pretrained.update(format=FORMAT, weights_sha256=hashlib.sha256(weights).hexdigest())
    config = {**record, "kind": "model", "model": model.spec(), "pretrained": pretrained}
    atomic_write_bytes(out / WEIGHTS, weights)
    atomic_write_json(out / "config.json", config)
    atomic_write_bytes(out / CARD, (card or default_card(model, config)).encode())
    return out


def default_card(model, config: dict) -> str:
    """A model card for a model saved without a run: what it is and how to load it."""
    spec = config["model"]
    c, h, w = spec["image_shape"]
    params = sum(p.numel() for p in model.parameters())
    return "\n".join(
        [
            f"# {spec['name']} ({c}x{h}x{w}, {spec['levels']} levels)",
            "",
            f"A pixelzoo `{spec['name']}` model with {params:,} parameters, saved with "
            "`model.save_pretrained`. Its training is not recorded here.",
            "",
            "```python",
            "import pixelzoo",
            "model = pixelzoo.from_pretrained('THIS_FOLDER')",
            "```",
            "",
            "Settings: " + ", ".join(f"`{k}={v}`" for k, v in spec["config"].items()),
            "",
        ]
    )


def weights_digest(path: Path) -> str:
    """The SHA-256 of a weights file (what ``config.json`` records)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped() -> dict[str, Path]:
    """The pretrained folders shipped inside the package (``pretrained:NAME``), by name."""
    root = Path(str(importlib.resources.files("pixelzoo"))) / "pretrained"
    if not root.is_dir():
        return {}
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}
