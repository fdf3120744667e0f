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
    assert set(res) == {"nats", "bits_per_dim", "split", "images"}
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
