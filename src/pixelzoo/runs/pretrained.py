"""Pretrained models: ``from_pretrained`` and ``pixelzoo export`` (the layout is
:mod:`pixelzoo.models.pretrained`'s).

A model is named in one of three ways, wherever a run folder is taken
(``pixelzoo sample NAME``, ``evaluate``, ``complete``, ``compress``, ``compare``):

* a folder: a run (its best checkpoint) or a pretrained folder;
* ``pretrained:NAME``: weights shipped inside the package (``pixelzoo models
  --pretrained`` lists them), trained by this project's own commands, each with
  the command and its measured test NLL on its model card;
* ``OWNER/REPO`` (or ``OWNER/REPO@REVISION``): a model repository on the Hugging
  Face Hub, fetched with ``huggingface_hub.snapshot_download`` into its cache
  (``pip install huggingface_hub``; only ``config.json``, ``model.safetensors``
  and ``README.md`` are fetched). NOTE: this path is one call into
  ``huggingface_hub`` and is not tested here (no network); uploading is
  ``huggingface_hub.upload_folder`` on an exported folder.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from pixelzoo.errors import CheckpointError, ConfigError
from pixelzoo.models.pretrained import CARD, WEIGHTS, save_pretrained, shipped
from pixelzoo.runs.run import Run

PREFIX = "pretrained:"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+(@[\w./-]+)?")


def resolve(name) -> Path:
    """The local folder of a run, a pretrained folder, ``pretrained:NAME`` or a Hub id."""
    text = str(name)
    if text.startswith(PREFIX):
        found = shipped()
        key = text[len(PREFIX) :]
        if key not in found:
            known = ", ".join(found) or "none are installed"
            raise ConfigError(f"no pretrained model {key!r}; shipped: {known}")
        return found[key]
    path = Path(text)
    if path.exists() or not HUB_ID.fullmatch(text):
        return path  # Run says, in one sentence, what is wrong with a missing folder
    return _download(text)


def _download(repo: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ConfigError(
            f"{repo!r} is no folder here; to fetch it from the Hugging Face Hub, "
            "pip install huggingface_hub"
        ) from None
    repo_id, _, revision = repo.partition("@")
    try:
        where = snapshot_download(
            repo_id, revision=revision or None, allow_patterns=["config.json", WEIGHTS, CARD]
        )
    except Exception as e:  # the hub's errors are many; all mean "could not fetch"
        raise CheckpointError(f"could not fetch {repo!r} from the Hugging Face Hub ({e})") from None
    return Path(where)


def open_run(name) -> Run:
    """The :class:`Run` named by ``name`` (see the module docstring)."""
    return Run(resolve(name))


def from_pretrained(name, device: str = "cpu", which: str = "best"):
    """The model named by ``name`` (a run or pretrained folder, ``pretrained:NAME`` or a
    Hub id), with its weights, in eval mode on ``device``."""
    return open_run(name).load_model(which, device)


def training_command(run: Run) -> str:
    """The ``pixelzoo train`` command line that makes this run (from its config.json)."""
    train, spec = run.train, run.model_spec
    args = ["pixelzoo", "train", "--model", spec["name"]]
    if train.get("preset"):
        args += ["--preset", train["preset"]]
    args += ["--data", train["data"]]
    if train.get("data_dir"):
        args += ["--data-dir", f"DATA/{Path(train['data_dir']).name}"]
    for key in ("epochs", "steps", "minutes", "batch_size"):
        if train.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(train[key])]
    for key, value in sorted((train.get("overrides") or {}).items()):
        args += ["--set", f"{key}={_text(value)}"]
    for key, value in sorted((train.get("data_options") or {}).items()):
        args += ["--set", f"data.{key}={_text(value)}"]
    skip = {"model", "preset", "data", "data_dir", "data_options", "overrides", "epochs",
            "steps", "minutes", "batch_size", "device", "samples", "log_every", "ckpt_every"}  # fmt: skip
    for key, value in sorted(train.items()):
        if key not in skip and value is not None:
            args += ["--set", f"{key}={_text(value)}"]
    return shlex.join(args)


def _text(value) -> str:
    """A ``--set`` value as the CLI reads it back (JSON, except plain strings)."""
    return value if isinstance(value, str) else json.dumps(value)


def export(run_dir, out, *, which: str = "best", measured: dict | None = None) -> Path:
    """Write the run's checkpoint ``which`` into ``out`` in the pretrained layout, with a
    model card: the training command, data, budget and ``measured`` (e.g. the test NLL:
    what :func:`pixelzoo.evaluation.nll.evaluate_nll` returns)."""
    run = Run(run_dir)
    if run.kind != "model":
        raise CheckpointError(f"{run.path} is an evaluator; export takes a generative-model run")
    model = run.load_model(which)
    ckpts = run.checkpoints
    step = None
    if not run.is_pretrained:  # "best" is "last" in a run that never had a best (a GAN's)
        step = ckpts.step(which) if ckpts.step(which) is not None else ckpts.step("last")
    info = run.training_record()
    pretrained = {
        "exported_from": run.run_id,
        "checkpoint": which,
        "step": step,
        "train_seconds": info["train_seconds"],
        "measured": measured,
    }
    record = {k: v for k, v in run.config.items() if k not in ("model", "pretrained", "kind")}
    record["pretrained"] = pretrained
    return save_pretrained(model, out, record=record, card=model_card(run, model, pretrained))


def citation(doc: str) -> str:
    """The paper a model file cites at its top: its opening paragraphs up to the one
    with the year, without the section list."""
    parts = []
    for para in doc.strip().split("\n\n")[:3]:
        parts.append(" ".join(para.split()))
        if re.search(r"\b(19|20)\d\d\b", para):
            break
    text = " ".join(parts).split(" §")[0].rstrip(" ,;")
    return text + ")" * (text.count("(") - text.count(")"))


def model_card(run: Run, model, pretrained: dict) -> str:
    """The README.md of an exported model: what it is, how it was trained, what it scores."""
    spec, train = run.model_spec, run.train
    c, h, w = spec["image_shape"]
    params = sum(p.numel() for p in model.parameters())
    paper = citation(sys.modules[type(model).__module__].__doc__ or "")
    m = pretrained.get("measured")
    seconds = pretrained.get("train_seconds")
    data = run.data_name
    if data == "folder" and run.data_dir:  # an image folder is known by its name
        data = f"{Path(run.data_dir).name} (an image folder)"
    chosen = run.config.get("chosen") or {}
    autocast = "float16" if chosen.get("amp_dtype") == "float16" else "bf16"
    machine = (
        f"- Trained on: {chosen['device']}, {chosen['threads']} threads, "
        f"{f'{autocast} autocast' if chosen.get('amp') else 'float32'}"
        if chosen.get("device")
        else None
    )
    lines = [
        f"# {spec['name']} on {data} ({c}x{h}x{w}, {spec['levels']} levels)",
        "",
        f"A pixelzoo `{spec['name']}` ({params:,} parameters): {paper}",
        "",
        "## Use",
        "",
        "```python",
        "import pixelzoo",
        "",
        'model = pixelzoo.from_pretrained("THIS_FOLDER_OR_NAME")',
        "x = model.sample(16)  # integer images [16, C, H, W]",
        "```",
        "",
        "or `pixelzoo sample THIS_FOLDER_OR_NAME -n 16 --out samples.png` "
        "(also `evaluate`, `complete`, `compress`).",
        "",
        "## Training",
        "",
        f"- Data: {run.describe_data()}"
        + (f"; classes {', '.join(run.classes)}" if run.classes else ""),
        f"- Command (DATA: the folder holding the data): `{training_command(run)}`; "
        "or replay every setting: `pixelzoo train --config THIS_FOLDER/config.json --out NEW`",
        f"- Budget: {pretrained.get('step') or '?'} steps of batch {train.get('batch_size')}"
        + (f", {seconds / 60:.1f} minutes of training steps" if seconds else ""),
        *([machine] if machine else []),
        f"- Checkpoint: {pretrained['checkpoint']} (run id {pretrained.get('exported_from')})",
        "",
        "## Measured",
        "",
    ]
    if m:
        low, high = m["nats_ci"]
        lines.append(
            f"- Test NLL on {m['images']:,} {m['split']} images: {m['nats']:.3f} nats/image "
            f"(95% interval {low:.3f} to {high:.3f}), {m['bits_per_dim']:.4f} bits/dim"
            + (" (an upper bound: the IWAE bound)" if m.get("nats_kind") == "bound" else " (exact)")
        )
        if m.get("check"):
            lines.append(
                f"- The first {m['check']['images']:,} of them (a quick check of these weights): "
                f"{m['check']['nats']:.4f} nats/image"
            )
    else:
        lines.append("- Not measured at export (`pixelzoo evaluate THIS_FOLDER` measures it).")
    return "\n".join(lines) + "\n"
