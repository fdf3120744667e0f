"""Pretrained folders: save_pretrained / from_pretrained for every model, pixelzoo export
with its model card, the names a model is given by, and the errors."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import torch
from conftest import shared

import pixelzoo
from pixelzoo import models
from pixelzoo.errors import CheckpointError, ConfigError
from pixelzoo.evaluation import evaluate_nll
from pixelzoo.models.pretrained import shipped
from pixelzoo.runs import Run
from pixelzoo.runs.pretrained import open_run, resolve
from pixelzoo.training import TrainConfig, train
from tests.helpers import cli


@pytest.mark.parametrize("name", models.names())
def test_every_model_round_trips_through_a_pretrained_folder(name, tmp_path):
    torch.manual_seed(0)
    model = models.build(name, (3, 8, 8), 4, "tiny").eval()
    model.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "README.md", "config.json", "model.safetensors",
    ]  # fmt: skip
    loaded = pixelzoo.from_pretrained(tmp_path / "m")
    assert type(loaded) is type(model) and loaded.spec() == model.spec()
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(a, b), k
    # The same model: the same images from the same seed (the auto-encoder, which has
    # no samples of p(x), the same likelihood of given images).
    if model.cond_optional:
        x = torch.randint(0, 4, (2, 3, 8, 8))
        assert torch.equal(model.log_prob(x), loaded.log_prob(x))
        return
    cond = model.sample_cond(2)
    a = model.sample(2, cond, torch.Generator().manual_seed(1))
    b = loaded.sample(2, cond, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pre")
    cfg = TrainConfig(
        model="pixelcnn", data="digits", steps=30, overrides={"blocks": 1}, samples=0,
        log_every=10, lr_decay=0.999,
    )  # fmt: skip
    train(cfg, root / "run", progress=False)
    return root / "run"


def test_export_writes_a_model_card_with_the_measured_test_nll(run, tmp_path):
    out = tmp_path / "exported"
    printed = cli("export", run, "--out", out, "--no-progress")
    assert "exported" in printed.stdout and "nats/image" in printed.stderr
    config = json.loads((out / "config.json").read_text())
    measured = config["pretrained"]["measured"]
    assert measured["split"] == "test" and measured["images"] == len(Run(run).load_split("test"))
    # The card's figure is what evaluate gives on the exported folder, and on the run.
    again = json.loads(cli("evaluate", out, "--json").stdout)
    of_run = json.loads(cli("evaluate", run, "--json").stdout)
    assert again["nats"] == pytest.approx(measured["nats"], rel=1e-9)
    assert of_run["nats"] == pytest.approx(measured["nats"], rel=1e-9)
    card = (out / "README.md").read_text()
    assert f"{measured['nats']:.3f} nats/image" in card and "digits" in card
    # ... and the mean of its first images, which a quick check re-measures.
    check = measured["check"]
    assert check["images"] == min(500, measured["images"])
    first = Run(run).load_split("test").subset(torch.arange(check["images"]))
    model = pixelzoo.from_pretrained(out)
    assert evaluate_nll(model, first)["nats"] == pytest.approx(check["nats"], rel=1e-9)
    assert f"The first {check['images']:,} of them" in card
    assert "30 steps of batch 64" in card
    chosen = Run(run).config["chosen"]  # the machine the weights were trained on
    assert f"- Trained on: cpu, {chosen['threads']} threads, " in card
    assert "Pixel Recurrent Neural Networks" in card  # the model file's citation
    # The card's training command resolves to the run's own training settings.
    command = re.search(r"Command \(DATA: [^)]*\): `([^`]*)`", card).group(1)
    argv = shlex.split(command)[1:] + ["--dry-run"]
    planned = json.loads(cli(*argv).stdout)
    cosmetic = {"samples", "log_every", "ckpt_every", "device"}  # no effect on the weights
    mine = {k: v for k, v in planned["train"].items() if k not in cosmetic}
    theirs = {k: v for k, v in Run(run).train.items() if k not in cosmetic}
    assert mine == theirs
    assert planned["model"] == Run(run).model_spec


def test_an_exported_folder_samples_completes_and_compresses(run, tmp_path):
    out = tmp_path / "exported"
    cli("export", run, "--out", out, "--no-measure")
    assert "Not measured" in (out / "README.md").read_text()
    cli("sample", out, "-n", "4", "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0
    from_run = pixelzoo.from_pretrained(run)
    from_out = pixelzoo.from_pretrained(out)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    assert torch.equal(from_run.sample(3, generator=g()), from_out.sample(3, generator=g()))
    printed = cli("compress", out, "--data", "digits", "-n", "5", "--out", tmp_path / "f.pzc")
    assert "bits/dim" in printed.stdout
    cli("decompress", out, tmp_path / "f.pzc", "--out", tmp_path / "back.npz")


def test_bad_pretrained_folders_and_names_are_one_sentence(run, tmp_path):
    out = tmp_path / "exported"
    cli("export", run, "--out", out, "--no-measure")
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        pixelzoo.from_pretrained(out)
    weights.write_bytes(bytes(data[:100]))
    with pytest.raises(CheckpointError, match="corrupt"):
        pixelzoo.from_pretrained(out)
    weights.unlink()
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        pixelzoo.from_pretrained(out)
    with pytest.raises(ConfigError, match="no pretrained model 'nope'"):
        resolve("pretrained:nope")
    for command in (("sample", "pretrained:nope", "--out", tmp_path / "x.png"),
                    ("compare", "pretrained:nope", "--out", tmp_path / "report")):  # fmt: skip
        err = cli(*command, check=False).stderr
        assert err.startswith("error: no pretrained model") and err.count("\n") == 1, command
    # A Hub id that is no folder here: fetched with huggingface_hub, or one sentence.
    try:
        import huggingface_hub  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install huggingface_hub"):
            resolve("someone/some-model")
    # A model saved without a run records no data: evaluate asks for one.
    models.build("pixelcnn", (1, 8, 8), 2, "tiny").save_pretrained(tmp_path / "bare")
    with pytest.raises(ConfigError, match="records no dataset"):
        Run(tmp_path / "bare").load_split("test")


# The weights shipped inside the package (pretrained:NAME), trained by this project's
# own commands: each samples from the command line with no data and no training, and
# reproduces the test NLL its card states.
SHIPPED = sorted(shipped())
WANTED = {
    "pixelcnn-binarized-mnist", "gated-pixelcnn-binarized-mnist", "pixelcnn-pp-cifar10-jpeg",
}  # fmt: skip


def test_the_package_ships_the_pretrained_models_issue_20_names():
    assert WANTED <= set(SHIPPED), SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_samples_from_the_command_line(name, tmp_path):
    printed = cli("sample", f"pretrained:{name}", "-n", "4", "--out", tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 0, printed.stderr
    assert f"pretrained:{name}" in cli("models").stdout


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_reproduces_its_card(name):
    run = open_run(f"pretrained:{name}")
    measured = run.config["pretrained"]["measured"]
    card = (run.path / "README.md").read_text()
    assert f"{measured['nats']:.3f} nats/image" in card and measured["split"] == "test"
    check = measured["check"]
    assert f"{check['nats']:.4f} nats/image" in card
    split = run.load_split("test", shared(Path(run.data_dir).name))
    assert len(split) == measured["images"]  # the card scored the whole test split
    model = run.load_model("best")
    first = split.subset(torch.arange(check["images"]))
    # To 1e-3 nats, or a part in 10^6 of a colour image's ~7,000 nats (float32 sums of
    # 3,072 sub-pixels' terms round differently on another CPU's kernels).
    again = evaluate_nll(model, first)["nats"]
    assert again == pytest.approx(check["nats"], abs=1e-3, rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_model_reproduces_its_card_on_the_whole_test_split(name):
    run = open_run(f"pretrained:{name}")
    measured = run.config["pretrained"]["measured"]
    split = run.load_split("test", shared(Path(run.data_dir).name))
    again = evaluate_nll(run.load_model("best"), split)
    assert again["nats"] == pytest.approx(measured["nats"], abs=1e-3, rel=1e-6)
