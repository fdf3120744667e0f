"""The CLI through real subprocesses: train -> evaluate -> sample -> complete."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from pixelzoo.training import compiling
from tests.helpers import cli, losses, pz


def test_train_evaluate_sample_complete(tmp_path):
    run = tmp_path / "run"
    out = pz(
        "train",
        "--out",
        run,
        "--steps",
        "40",
        "--no-progress",
        "--set",
        "blocks=2",
        "--set",
        "samples=4",
    )
    assert "valid NLL" in out.stdout
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["train"]["preset"] == "default" and cfg["model"]["config"]["blocks"] == 2
    assert cfg["data"]["levels"] == 17 and list(run.glob("samples/*.png"))
    # The end line splits the time; the digits' validation images all fit the share.
    assert (
        "validating (" in out.stdout and f"on {cfg['data']['valid_images']:,} images" in out.stdout
    )
    assert cfg["data"]["valid_images"] == cfg["data"]["valid_images_of"]

    res = json.loads(pz("evaluate", run, "--json").stdout)
    assert set(res) == {"nats", "nats_se", "nats_ci", "bits_per_dim", "bits_per_dim_ci", "split",
                        "images", "conditioned_on", "nats_kind"}  # fmt: skip
    low, high = res["nats_ci"]  # the 95% interval over the test images
    assert low < res["nats"] < high and high - low == pytest.approx(
        2 * 1.96 * res["nats_se"], rel=1e-3
    )
    assert res["nats_kind"] == "exact"
    assert res["conditioned_on"] is None
    assert res["split"] == "test" and res["images"] == 359
    assert 0 < res["bits_per_dim"] < 4.09  # log2(17): better than uniform

    pz("sample", run, "-n", "9", "--out", tmp_path / "s.png", "--seed", "3")
    pz("sample", run, "-n", "9", "--out", tmp_path / "s2.png", "--seed", "3")
    assert (tmp_path / "s.png").read_bytes() == (tmp_path / "s2.png").read_bytes()
    with Image.open(tmp_path / "s.png") as im:
        # 3x3 grid of 8x8 images with 1-pixel borders (28 px), upscaled 8x for viewing.
        assert im.size == (28 * 8, 28 * 8)

    pz(
        "complete",
        run,
        "--data",
        "digits",
        "--rows",
        "4",
        "-n",
        "3",
        "--completions",
        "2",
        "--out",
        tmp_path / "c.png",
    )
    with Image.open(tmp_path / "c.png") as im:
        w, h = im.size
        assert w > h  # 3 rows of (occluded, 2 completions, original)


def test_pixelcnn_pp_with_polyak_averaging_and_both_samplers(tmp_path):
    run = tmp_path / "pp"
    pz("train", "--model", "pixelcnn_pp", "--out", run, "--steps", "15", "--no-progress",
       "--set", "ema=0.99", "--set", "samples=4")  # fmt: skip
    assert json.loads((run / "config.json").read_text())["train"]["ema"] == 0.99
    res = json.loads(pz("evaluate", run, "--json").stdout)
    assert 0 < res["bits_per_dim"] < 4.09
    for sampler in ("cached", "naive"):
        pz("sample", run, "-n", "4", "--out", tmp_path / f"{sampler}.png", "--sampler", sampler)
    assert (tmp_path / "cached.png").read_bytes() == (tmp_path / "naive.png").read_bytes()


GATED_CLI = ["--no-progress", "--model", "gated_pixelcnn", "--steps", "20", "--set", "layers=2"]


def test_class_conditional_run_samples_chosen_classes(tmp_path):
    run = tmp_path / "cond"
    pz("train", "--out", run, "--cond", "class", *GATED_CLI, "--set", "samples=10")
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["model"]["config"]["num_classes"] == 10 and cfg["train"]["cond"] == "class"
    with Image.open(next(run.glob("samples/*.png"))) as im:
        assert im.size == ((10 * 9 + 1) * 8, (1 * 9 + 1) * 8)  # one column per class
    out = pz("evaluate", run)
    assert "given each image's label" in out.stdout
    pz("sample", run, "-n", "4", "--class", "3", "--out", tmp_path / "three.png")
    pz("sample", run, "-n", "4", "--class", "3", "--out", tmp_path / "three2.png", "--seed", "1")
    assert (tmp_path / "three.png").read_bytes() != (tmp_path / "three2.png").read_bytes()
    out = pz("sample", run, "--class", "10", "--out", tmp_path / "x.png", check=False)
    assert out.returncode == 2 and "class must be in 0..9, got 10" in out.stderr
    pz("complete", run, "--rows", "3", "-n", "2", "--out", tmp_path / "c.png")


def test_autoencoder_reconstructs(tmp_path):
    run = tmp_path / "ae"
    pz("train", "--out", run, *GATED_CLI, "--model", "pixelcnn_ae", "--set", "samples=8")
    assert list(run.glob("samples/*.png"))  # a validation image and 3 decodings per row
    pz("reconstruct", run, "-n", "3", "--samples", "2", "--out", tmp_path / "r.png")
    with Image.open(tmp_path / "r.png") as im:
        assert im.size == ((3 * 9 + 1) * 8, (3 * 9 + 1) * 8)  # image + 2 decodings, 3 rows
    out = pz("evaluate", run)
    assert "own code (a reconstruction NLL, not a likelihood of x)" in out.stdout
    out = pz("sample", run, "--out", tmp_path / "s.png", check=False)
    assert out.returncode == 2 and "use pixelzoo reconstruct" in out.stderr


def test_errors_are_one_sentence_with_exit_status_2(tmp_path):
    for args, msg in [
        (("train", "--model", "pixelrnnn"), "unknown model 'pixelrnnn'; valid names"),
        (("train", "--data", "imagenett"), "unknown dataset 'imagenett'; valid names"),
        (("train", "--set", "hiden=3"), "--set hiden: not a setting"),
        (
            ("train", "--data", "binarized_mnist", "--data-dir", tmp_path, "--out", tmp_path / "r"),
            "has no binarized_mnist_train.amat.gz or binarized_mnist_train.amat",
        ),
        (("evaluate", tmp_path / "missing"), "does not exist"),
        (("train", "--resume", tmp_path), "has no config.json"),
    ]:
        out = pz(*args, check=False)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert lines[-1].startswith("error: ") and msg in lines[-1], lines
        assert "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()
    # Counts are checked by the parser, before anything runs.
    out = pz("sample", tmp_path, "-n", "0", "--out", tmp_path / "s.png", check=False)
    assert out.returncode == 2 and "argument -n: must be at least 1, got 0" in out.stderr


def test_dry_run_prints_what_the_run_will_use_and_listings(tmp_path):
    import numpy as np

    folder = tmp_path / "pics"
    folder.mkdir()
    g = np.random.default_rng(0)
    for k in range(20):
        Image.fromarray(g.integers(0, 255, (12, 12), dtype=np.uint8)).save(folder / f"{k:02d}.png")
    cfg = json.loads(
        pz(
            "train", "--dry-run", "--data", "folder", "--data-dir", folder,
            "--set", "blocks=3", "--set", "lr_decay=0.999",
            "--set", "data.size=8", "--set", "data.channels=1", "--set", "data.levels=4",
        ).stdout
    )  # fmt: skip
    assert cfg["train"]["overrides"] == {"blocks": 3} and cfg["train"]["lr_decay"] == 0.999
    assert cfg["train"]["data_options"] == {"size": 8, "channels": 1, "levels": 4}
    # Resolved, as the trainer will run it: the family's defaults and the whole network.
    assert cfg["train"]["lr"] == 1e-3 and cfg["train"]["grad_clip"] == 1.0
    assert cfg["train"]["betas"] == [0.9, 0.999] and cfg["train"]["ema"] == 0.0
    assert cfg["train"]["preset"] == "default"
    assert cfg["model"]["config"] == {
        "hidden": 32, "blocks": 3, "first_kernel": 7, "kernel": 3, "out_hidden": 64
    }  # fmt: skip
    assert cfg["model"]["image_shape"] == [1, 8, 8] and cfg["model"]["levels"] == 4
    assert cfg["parameters"] > 0 and not (tmp_path / "runs").exists()
    bad = pz("train", "--dry-run", "--set", "data.valid_size=0", check=False)
    assert bad.returncode == 2 and "dataset 'digits' has no option 'valid_size'" in bad.stderr
    assert "pixelcnn" in pz("models").stdout
    assert "binarize" in pz("datasets").stdout
    assert {"row_lstm", "diagonal_bilstm"} <= set(pz("models").stdout.split())


def test_receptive_field_picture(tmp_path):
    """The blind spot made visible: PixelCNN and Row LSTM miss pixels, the Diagonal BiLSTM none."""
    out = pz(
        "receptive-field",
        "pixelcnn",
        "row_lstm",
        "diagonal_bilstm",
        "--preset",
        "default",
        "--shape",
        "1,12,12",
        "--pixel",
        "7",
        "5",
        "--out",
        tmp_path / "rf.png",
        "--json",
    )
    result = json.loads(out.stdout)["models"]
    assert result["pixelcnn"]["blind_spot_pixels"] > 0
    assert result["row_lstm"]["blind_spot_pixels"] > 0
    assert result["diagonal_bilstm"]["blind_spot_pixels"] == 0
    assert all(v["future_pixels_seen"] == 0 and v["past_pixels"] == 89 for v in result.values())
    with Image.open(tmp_path / "rf.png") as im:
        assert im.format == "PNG"


def test_gan_and_vae_runs(tmp_path):
    gan = tmp_path / "gan"
    out = pz(
        "train",
        "--model",
        "dcgan",
        "--out",
        gan,
        "--steps",
        "25",
        "--no-progress",
        "--set",
        "log_every=5",
    )
    assert "no validation likelihood" in out.stdout
    cfg = json.loads((gan / "config.json").read_text())["train"]
    # The family's training defaults (DCGAN §4) were resolved and saved.
    assert cfg["lr"] == 2e-4 and cfg["betas"] == [0.5, 0.999] and cfg["grad_clip"] == 0.0
    log = [json.loads(line) for line in (gan / "metrics.jsonl").read_text().splitlines()]
    last_train = [r for r in log if r["split"] == "train"][-1]
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} <= set(last_train)
    assert log[-1]["split"] == "time" and log[-1]["valid_seconds"] < 0.01  # a GAN validates nothing
    assert list(gan.glob("samples/*.png"))
    pz("sample", gan, "-n", "8", "--out", tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").size[0] > 8
    bad = pz("evaluate", gan, check=False)
    assert bad.returncode == 2 and "annealed importance sampling" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = pz("complete", gan, "--rows", "4", "--out", tmp_path / "c.png", check=False)
    assert bad.returncode == 2 and "autoregressive" in bad.stderr

    vae = tmp_path / "vae"
    out = pz("train", "--model", "vae", "--out", vae, "--steps", "25", "--no-progress")
    assert "upper bound" in out.stdout
    res = json.loads(pz("evaluate", vae, "--json").stdout)
    assert res["nats_kind"] == "bound" and res["nats"] > 0
    assert "upper bound" in pz("evaluate", vae).stdout


def _error(capsys, *argv) -> str:
    """Run the CLI in-process; it must exit 2 with one 'error:' line and return that line."""
    from pixelzoo.cli import main

    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err and err[-1].startswith("error: "), (code, err)
    return err[-1]


def test_bad_settings_are_one_sentence_before_anything_is_written(capsys, tmp_path):
    run = tmp_path / "r"
    for sets, needle in [
        (["first_kernel=4"], "odd, positive kernel sizes"),
        (["kernel=0"], "kernel must be in 1..31, got 0"),
        (["blocks=-1"], "blocks must be in 0..1000, got -1"),
        (["blocks=1e9"], "blocks must be in 0..1000, got 1000000000"),
        (["blocks=2.5"], "blocks=2.5 is not a valid int"),
        (["amp=maybe"], "amp='maybe' is not a valid bool"),
        (["amp=ture"], "amp='ture' is not a valid bool"),
        (["grad_clip=nan"], "grad_clip"),
        (["lr=inf"], "lr"),
        (["seed=9223372036854775808"], "seed must be in [0, 9223372036854775808)"),
        (["data.binarize=yes"], "dataset 'digits' has no option 'binarize'"),
    ]:
        line = _error(
            capsys, "train", "--out", run, "--steps", "1", *[a for s in sets for a in ("--set", s)]
        )
        assert needle in line, (sets, line)
        assert not run.exists()
    assert "unknown device 'foo'" in _error(
        capsys, "train", "--out", run, "--device", "foo", "--steps", "1"
    )
    assert not run.exists()
    from pixelzoo.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["train", "--seed", str(2**63)])
    assert exit_.value.code == 2 and "must be in 0..2^63-1" in capsys.readouterr().err


def test_sample_to_a_folder_and_a_missing_run(capsys, tmp_path):
    run = tmp_path / "run"
    pz(
        "train",
        "--out",
        run,
        "--steps",
        "2",
        "--no-progress",
        "--set",
        "blocks=1",
        "--set",
        "samples=0",
    )
    (tmp_path / "pics").mkdir()
    assert "is a folder; give the name of a file" in _error(
        capsys, "sample", run, "-n", "2", "--out", tmp_path / "pics"
    )
    assert "does not exist" in _error(
        capsys, "sample", tmp_path / "nope", "--out", tmp_path / "s.png"
    )


def test_version_help_and_settings():
    assert pz("--version").stdout.strip().startswith("pixelzoo 0.")
    text = pz("train", "--help").stdout
    assert "(default: None)" not in text and "(default 20)" not in text and "``" not in text
    for line in text.splitlines():
        assert line.count("default") <= 1, line  # a default is said once
    out = pz("settings", "pixelcnn", "--preset", "binarized_mnist").stdout
    assert "blocks (int, in 0..1000; default 15)" in out  # the preset's value, its range
    assert "number of residual blocks after the first 7x7 layer" in out  # help from the docstring
    assert "lr_decay (float, in (0, 1]; default 1.0)" in out  # and the training settings
    settings = json.loads(pz("settings", "gated_pixelcnn", "--json").stdout)
    names = {r["name"] for rows in settings.values() for r in rows}
    assert {"layers", "num_classes", "micro_batch", "ema", "amp"} <= names


def test_a_run_replays_from_its_config(tmp_path):
    """train --config RUN/config.json repeats the run exactly (its full model settings, not
    the preset's name); --set applies on top."""
    first = tmp_path / "first"
    pz("train", "--out", first, "--steps", "6", "--no-progress", "--set", "blocks=1",
       "--set", "log_every=1", "--set", "samples=0")  # fmt: skip
    pz("train", "--config", first / "config.json", "--out", tmp_path / "again", "--no-progress")
    assert losses(first) == losses(tmp_path / "again") and len(losses(first)) == 6
    pz("train", "--config", first / "config.json", "--out", tmp_path / "other", "--no-progress",
       "--set", "lr=2e-3", "--steps", "3")  # fmt: skip
    saved = json.loads((tmp_path / "other" / "config.json").read_text())
    assert saved["train"]["lr"] == 2e-3 and saved["train"]["steps"] == 3
    assert saved["model"]["config"]["blocks"] == 1


def test_samples_for_external_tools(tmp_path):
    import numpy as np

    from tests.helpers import cli

    run = tmp_path / "run"
    cli(
        "train",
        "--out",
        run,
        "--steps",
        "2",
        "--no-progress",
        "--set",
        "blocks=1",
        "--set",
        "samples=0",
    )
    cli("sample", run, "-n", "5", "--format", "npz", "--out", tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as f:
        assert f["images"].shape == (5, 1, 8, 8) and f["images"].dtype == np.uint8
        assert int(f["images"].max()) <= 16 and int(f["levels"]) == 17
        assert f["images_8bit"].shape == (5, 8, 8, 1)
        assert np.array_equal(f["images_8bit"][..., 0], f["images"][:, 0].astype(int) * 255 // 16)
    cli("sample", run, "-n", "5", "--format", "png-folder", "--out", tmp_path / "pngs")
    files = sorted((tmp_path / "pngs").iterdir())
    assert [p.name for p in files] == [f"{k:05d}.png" for k in range(5)]
    with Image.open(files[0]) as im:
        assert im.mode == "L" and im.size == (8, 8)


def test_doctor_says_what_the_machine_gives(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("PIXELZOO_SHARED_DATA", str(tmp_path))
    monkeypatch.setenv("PIXELZOO_INCEPTION", str(tmp_path / "missing.pth"))
    info = json.loads(cli("doctor", "--json").stdout)
    assert info["torch"] == torch.__version__ and info["threads"] == torch.get_num_threads()
    assert info["shared_data"] == str(tmp_path) and info["inception_weights"] is None
    assert info["cuda"] == [] or torch.cuda.is_available()
    assert set(info["optional"]) == {"imagecodecs", "huggingface_hub", "torch-fidelity", "wandb"}
    text = cli("doctor").stdout
    assert f"torch {torch.__version__}" in text and "bfloat16 on the CPU" in text
    assert ("yes" if info["bf16_cpu"] else "no") in text.splitlines()[2]
    assert ("yes" if info["compile_cpu"] else "no (") in text.splitlines()[3]
    assert info["compile_cpu"] == compiling.compiler_available("cpu")[0]
