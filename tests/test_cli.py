"""The CLI through real subprocesses: train -> evaluate -> sample -> complete."""

from __future__ import annotations

import json
import subprocess
import sys

from PIL import Image


def pz(*args, check=True):
    out = subprocess.run(
        [sys.executable, "-m", "pixelzoo", *map(str, args)], capture_output=True, text=True
    )
    if check:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


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

    res = json.loads(pz("evaluate", run, "--json").stdout)
    assert set(res) == {"nats", "bits_per_dim", "split", "images", "conditioned_on", "nats_kind"}
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
    assert out.returncode == 2 and "--class must be in 0..9, got 10" in out.stderr
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
        (("train", "--data", "imagenet"), "unknown dataset 'imagenet'; valid names"),
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


def test_dry_run_and_listings():
    cfg = json.loads(
        pz(
            "train",
            "--dry-run",
            "--set",
            "blocks=3",
            "--set",
            "lr_decay=0.999",
            "--set",
            "data.valid_size=0",
        ).stdout
    )
    assert cfg["train"]["overrides"] == {"blocks": 3} and cfg["train"]["lr_decay"] == 0.999
    assert cfg["train"]["data_options"] == {"valid_size": 0}
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
    assert {"d_loss", "g_loss", "d_grad_norm", "g_grad_norm"} <= set(log[-1])
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
