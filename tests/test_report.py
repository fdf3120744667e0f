"""The comparison report: every metric in metrics.jsonl, the tables, and report.html in a real browser."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from pixelzoo.cli import main
from pixelzoo.errors import InputError
from pixelzoo.evaluation.ais import AISConfig
from pixelzoo.report import KEYS, MeasureConfig, compare
from pixelzoo.training import EvaluatorTraining, TrainConfig, train, train_evaluator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three quickly trained digit runs (exact, bound, GAN) and an evaluator."""
    root = tmp_path_factory.mktemp("runs")
    for name, sets in (("pixelcnn", {"blocks": 1}), ("dcgan", {}), ("vae", {})):
        cfg = TrainConfig(
            model=name, data="digits", steps=40, overrides=sets, samples=0, log_every=10
        )
        train(cfg, root / name, progress=False)
    train_evaluator(EvaluatorTraining(data="digits", epochs=3), root / "evaluator", progress=False)
    return root


@pytest.fixture(scope="module")
def report(runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cfg = MeasureConfig(
        samples=48,
        ais_images=6,
        bdmc_images=4,
        ais_config=AISConfig(steps=20, chains=2, leapfrog=3),
        ais_max_steps=40,
        bootstrap=40,
    )
    result = compare(
        [runs / "pixelcnn", runs / "dcgan", runs / "vae"],
        out,
        evaluator_dir=runs / "evaluator",
        cfg=cfg,
        progress=False,
    )
    return out, result["records"]


def test_metrics_jsonl_has_one_record_a_model_with_every_key(report):
    out, _ = report
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["model"] for r in rows] == ["data", "pixelcnn", "dcgan", "vae"]
    for r in rows:
        assert set(KEYS) <= set(r)
    data, pixelcnn, dcgan, vae = rows
    assert (
        pixelcnn["nats_kind"] == "exact"
        and dcgan["nats_kind"] == "ais"
        and vae["nats_kind"] == "bound"
    )
    assert (
        pixelcnn["ais_nats"] is None and data["nats"] is None
    )  # null where a metric does not apply
    assert dcgan["nats"] == dcgan["ais_nats"] and vae["iwae_nats"] == vae["nats"]
    for r in (pixelcnn, dcgan, vae):
        assert r["bits_per_dim"] == pytest.approx(r["nats"] / (64 * 0.6931471805599453))
        assert r["nats"] > 0 and r["fid"] > 0 and r["sample_seconds"] > 0 and r["params"] > 0
        assert 0 < r["ms_ssim"] <= 1 and r["swd"] > 0 and 1 <= r["modes"] <= 10
        assert r["train_seconds"] > 0 and r["steps"] == 40
        # Every figure comes with its 95% interval around it.
        for key in ("nats", "fid", "kid", "inception_score", "precision", "recall", "density",
                    "coverage", "memorized", "ms_ssim", "modes", "kl_to_uniform"):  # fmt: skip
            low, high = r[f"{key}_ci"]
            assert low <= r[key] <= high, (r["model"], key, low, r[key], high)
        assert 0 <= r["precision"] <= 1 and r["exact_copies"] == 0 and r["timing_runs"] >= 1
        assert not Path(r["run"]).is_absolute()  # relative to the report folder
    assert (
        dcgan["ais_steps"] >= 20
        and dcgan["bdmc_target"] == 1.0
        and dcgan["nats_route"].startswith("AIS")
    )
    assert vae["nats_route"] in ("IWAE-64", f"AIS ({vae['ais_steps']} steps)")
    assert data["fid_ci"][0] <= data["fid"] and data["memorized"] is None  # training images: n/a
    assert pixelcnn["sample_seconds_naive"] > 0 and dcgan["sample_seconds_naive"] is None
    # A real file for the autoregressive model, of about its NLL on the same images, and
    # for the VAE by bits back, of about its bits-back ideal; none for the GAN; the everyday
    # codecs on those images with the data.
    assert dcgan["compressed_bits_per_dim"] is None
    assert pixelcnn["compressed_images"] == data["compressed_images"] == 100
    file_bits = pixelcnn["compressed_bits_per_dim"] * 100 * 64
    assert pixelcnn["compressed_nll_bits_per_dim"] * 100 * 64 < file_bits
    assert file_bits < pixelcnn["compressed_nll_bits_per_dim"] * 100 * 64 * 1.01 + 8 * 38 + 64
    assert vae["compressed_bits_back"] and not pixelcnn["compressed_bits_back"]
    vae_bits = vae["compressed_bits_per_dim"] * 100 * 64
    ideal = vae["compressed_nll_bits_per_dim"] * 100 * 64
    assert 0.99 * ideal <= vae_bits <= 1.02 * ideal + 8 * 38 + 64
    assert set(data["lossless_baselines"]) == {"png", "webp", "jpegxl"}
    assert all(m["tiled"] > 0 for m in data["lossless_baselines"].values() if m)
    # The exact NLL in the report is the one `pixelzoo evaluate` gives.
    from pixelzoo.evaluation import evaluate_nll
    from pixelzoo.training import load_model, load_split

    run = out / pixelcnn["run"]  # relative to the report folder
    assert pixelcnn["nats"] == pytest.approx(
        evaluate_nll(load_model(run), load_split(run, "test"))["nats"]
    )


def test_report_md_has_the_table_the_reading_and_every_image(report):
    out, records = report
    md = (out / "report.md").read_text()
    assert "| model | params |" in md and "| model | samples | FID |" in md and "## Reading" in md
    assert md.count("\n| ") == 2 * (1 + 1 + len(records))  # two tables: header, separator, rows
    assert " ± " in md and "Intervals (fid): bootstrap" in md
    assert "/work/" not in md and str(out) not in md  # no path of this machine
    for name in (
        "curves.png",
        "01-pixelcnn-samples.png",
        "02-dcgan-pairs.png",
        "receptive-fields.png",
    ):
        assert f"]({name})" in md and (out / name).stat().st_size > 0
    assert "AIS" in md and "Likelihood, NLL: best" in md and "Verdict by axis" in md
    assert "0.0 min" not in md
    assert "| file bits/dim |" in md and "JPEG-XL lossless" in md and "one file per image" in md
    assert "(bits-back ideal " in md and "bits-back code (Townsend et al. 2019)" in md


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)
def test_report_html_renders_in_headless_chromium_with_every_image_loaded(report):
    sync_playwright = pytest.importorskip(
        "playwright.sync_api", reason="playwright is a test dependency"
    ).sync_playwright
    out, records = report
    flags = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=flags)
        try:
            page = browser.new_page()
            errors, failed = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.goto((out / "report.html").as_uri())
            page.wait_for_load_state("load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])"
            )
            # Nothing is cut off on the right at a laptop's width: every image fits the page.
            page.set_viewport_size({"width": 1280, "height": 900})
            overflow = page.evaluate(
                "Array.from(document.images).filter(i => i.getBoundingClientRect().right > "
                "document.documentElement.clientWidth + 1).map(i => i.getAttribute('src'))"
            )
            rows = page.locator("table tbody tr").count()
            first_cells = page.locator("table tbody tr td:first-child").all_inner_texts()
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert errors == [] and failed == [] and overflow == [], overflow
    assert len(images) >= 1 + 2 * len(records) and all(ok for _, ok in images), images
    assert rows == 2 * len(records) and first_cells[1:4] == ["pixelcnn", "dcgan", "vae"]
    assert len(shot) > 10_000  # a rendered page, not a blank one


def test_compare_cli_errors_are_one_sentence(runs, tmp_path, capsys):
    assert main(["compare", "--out", str(tmp_path / "r")]) == 2
    assert "at least one run" in capsys.readouterr().err
    assert main(["compare", str(runs / "evaluator"), "--out", str(tmp_path / "r")]) == 2
    assert "--evaluator" in capsys.readouterr().err
    other = tmp_path / "bm"  # a run on another dataset: only its config is read before the error
    shutil.copytree(runs / "vae", other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["train"]["data"], cfg["model"]["image_shape"], cfg["model"]["levels"] = (
        "binarized_mnist",
        [1, 28, 28],
        2,
    )
    (other / "config.json").write_text(json.dumps(cfg))
    assert main(["compare", str(runs / "vae"), str(other), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "one dataset" in err and "binarized_mnist" in err and err.count("\n") == 1
    assert (
        main(
            [
                "compare",
                str(other),
                "--evaluator",
                str(runs / "evaluator"),
                "--no-ais",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "evaluator classifies images [1, 8, 8]" in capsys.readouterr().err
    assert main(["compare", str(runs / "vae"), "--quick", "--out", str(tmp_path / "r")]) == 2
    assert (
        main(
            [
                "compare",
                str(runs / "vae"),
                "--inception",
                str(tmp_path / "x.pth"),
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "pt_inception-2015-12-05" in capsys.readouterr().err


def test_compare_cli_writes_the_report(runs, tmp_path, capsys):
    rc = main(
        [
            "compare",
            str(runs / "vae"),
            "--no-ais",
            "--samples",
            "32",
            "--no-progress",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert rc == 0
    assert "| vae |" in capsys.readouterr().out
    rec = [
        json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    ][-1]
    assert rec["ais_nats"] is None and rec["fid"] is None and rec["nats_kind"] == "bound"


def test_inception_beside_the_evaluator_adds_its_own_labelled_table(
    runs, inception_weights, tmp_path, capsys
):
    from pixelzoo.evaluation import feature_metrics
    from pixelzoo.report.measure import first_images
    from pixelzoo.runs import Run

    net, path = inception_weights
    out = tmp_path / "r"
    argv = ["compare", str(runs / "dcgan"), "--evaluator", str(runs / "evaluator"), "--inception",
            str(path), "--no-ais", "--samples", "16", "--compress-images", "0", "--bootstrap", "20",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert "| model | samples | Inception FID | Inception KID | Inception IS |" in (
        capsys.readouterr().out
    )
    data, dcgan = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # The evaluator still gives every feature metric; Inception adds its own three.
    for rec in (data, dcgan):
        assert rec["fid"] is not None and rec["precision"] is not None
        for key in ("inception_fid", "inception_kid", "inception_is"):
            low, high = rec[f"{key}_ci"]
            assert low <= rec[key] <= high
        assert rec["inception_fid"] != pytest.approx(rec["fid"])
    # The data row's Inception FID is Inception-v3's FID of these very images.
    run = Run(runs / "dcgan")
    test, train = (first_images(run.load_split(s), 16) for s in ("test", "train"))
    direct = feature_metrics(net, test, train, run.levels, reps=20)
    assert data["inception_fid"] == pytest.approx(direct["fid"].value, rel=1e-4)
    assert data["inception_is"] == pytest.approx(direct["inception_score"].value, rel=1e-4)
    md = (out / "report.md").read_text()
    assert "Inception-v3 (" + path.name + ")" in md and "Inception FID/KID/IS" in md
    assert "<h2>Inception-v3 features (the published kind of FID/IS)</h2>" in (
        (out / "report.html").read_text()
    )


@pytest.mark.slow
def test_compare_quick_on_the_digits(tmp_path):
    assert main(["compare", "--quick", "--no-progress", "--out", str(tmp_path / "q")]) == 0
    rows = [
        json.loads(line) for line in (tmp_path / "q" / "metrics.jsonl").read_text().splitlines()
    ]
    assert [r["model"] for r in rows] == [
        "data",
        "pixelcnn",
        "gated_pixelcnn",
        "pixelcnn_pp",
        "dcgan",
        "vae",
    ]
    assert all(r["nats"] > 0 and r["fid"] > 0 for r in rows[1:])
    assert (tmp_path / "q" / "report.html").exists()


def test_a_slow_sampler_draws_only_what_fits_its_budget(runs, tmp_path):
    from pixelzoo.report.measure import measure_run

    cfg = MeasureConfig(samples=100, max_sample_seconds=1e-6, naive_timing=False, ais=False)
    rec = measure_run(runs / "pixelcnn", tmp_path, None, cfg)
    assert rec["samples"] == 16 and rec["fid"] is None
    # Samples already in the cache cost nothing: all of them are used, whatever the budget.
    cache = dataclasses.replace(cfg, max_sample_seconds=None, sample_cache=tmp_path / "cache")
    measure_run(runs / "pixelcnn", tmp_path, None, cache)
    capped = dataclasses.replace(cache, max_sample_seconds=1e-6)
    assert measure_run(runs / "pixelcnn", tmp_path, None, capped)["samples"] == 100


def _rec(model, **figures):
    """A record with figures given as (value, low, high)."""
    from pixelzoo.report.measure import KEYS

    r = {**dict.fromkeys(KEYS), "model": model, "label": model, "samples": 200, "nll_images": 500}
    for key, v in figures.items():
        if key == "per_image":
            r["per_image"], r["nats_kind"] = v, "exact"
            r["nats"], r["nats_ci"] = float(v.mean()), [float(v.mean()) - 1, float(v.mean()) + 1]
        else:
            r[key], r[f"{key}_ci"] = v[0], [v[1], v[2]]
    return r


def test_the_reading_ranks_only_what_the_intervals_separate():
    import torch

    from pixelzoo.report.verdict import reading

    g = torch.Generator().manual_seed(0)
    hard = torch.randn(500, generator=g, dtype=torch.float64) * 10 + 90
    same = hard + 0.01 * torch.randn(500, generator=g, dtype=torch.float64)
    records = [
        _rec("data", fid=(30.0, 20.0, 40.0)),
        _rec("a", per_image=hard, fid=(80.0, 70.0, 90.0)),
        _rec("twin", per_image=same, fid=(81.0, 71.0, 91.0)),  # the same model, drawn again
        _rec("worse", per_image=hard + 3.0, fid=(300.0, 280.0, 320.0)),  # visibly worse
    ]
    words = reading(records)
    nll = next(w for w in words if w.startswith("Likelihood"))
    assert "ahead of worse (+3.00" in nll and "not separated from twin" in nll
    fid = next(w for w in words if w.startswith("Fidelity, FID"))
    assert (
        "best a" in fid
        and "ahead of worse" in fid
        and "not separated from twin at 200 samples" in fid
    )
    verdict = next(w for w in words if w.startswith("Verdict"))
    assert "likelihood: no winner, a, twin not separated by NLL" in verdict
    assert any("separated from every model, so FID tells" in w for w in words)
    # The real data's FID is not separated from a model at a small size: said so.
    close = reading([_rec("data", fid=(75.0, 60.0, 90.0)), _rec("a", fid=(80.0, 70.0, 90.0))])
    assert any("not separated from a: at this size FID cannot tell its samples" in w for w in close)
    # Two separated models on every axis: a winner is named.
    two = reading([_rec("a", per_image=hard), _rec("b", per_image=hard + 1.0)])
    assert "likelihood: a (NLL" in next(w for w in two if w.startswith("Verdict"))


def test_an_upper_bound_above_the_best_ranks_nothing():
    import torch

    from pixelzoo.report.verdict import reading

    x = torch.full((100,), 90.0, dtype=torch.float64) + torch.linspace(
        -5, 5, 100, dtype=torch.float64
    )
    bound = _rec("vae", nats=(120.0, 119.0, 121.0))
    bound["nats_kind"] = "bound"
    nll = next(
        w for w in reading([_rec("pixelcnn", per_image=x), bound]) if w.startswith("Likelihood")
    )
    assert "not separated from vae (an upper bound above it, so not a ranking)" in nll


def test_each_row_shows_its_own_images_under_labels_the_user_sets(runs, tmp_path):
    """Two runs in folders of the same name, and a run named 'data': every row's images
    are its own, the real data's figure is not overwritten, labels are escaped in report.md
    and image links URL-encoded."""
    for src, dst in (("pixelcnn", "a/pixelcnn"), ("vae", "b/pixelcnn"), ("dcgan", "data")):
        shutil.copytree(runs / src, tmp_path / dst)
    cfg = MeasureConfig(samples=16, ais=False, naive_timing=False)
    dirs = [tmp_path / "a" / "pixelcnn", tmp_path / "b" / "pixelcnn", tmp_path / "data"]
    out = tmp_path / "report"
    records = compare(dirs, out, cfg=cfg, progress=False)["records"]
    assert [r["label"] for r in records[1:]] == ["a/pixelcnn", "b/pixelcnn", "data"]
    files = [r["samples_image"] for r in records]
    assert len(set(files)) == 4 and all((out / f).is_file() for f in files)
    assert (out / files[1]).read_bytes() != (out / files[2]).read_bytes()  # a PixelCNN vs a VAE
    assert files[0].startswith("00-data") and files[3] != files[0]
    md = (out / "report.md").read_text()
    for f in files:
        assert f"]({f})" in md
    labelled = tmp_path / "labelled"
    compare(dirs[:2], labelled, cfg=cfg, labels=["pixel|cnn [A]", "a vae"], progress=False)
    md = (labelled / "report.md").read_text()
    assert "| pixel\\|cnn \\[A\\] |" in md and "**pixel\\|cnn \\[A\\]**" in md
    assert "](02-a-vae-samples.png)" in md
    with pytest.raises(InputError, match="one label per run"):
        compare(dirs[:2], labelled, cfg=cfg, labels=["x"], progress=False)


def test_runs_on_different_image_folders_are_not_one_dataset(runs, tmp_path):
    from PIL import Image

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        for k in range(40):  # 32 training, 4 validation and 4 test images
            Image.new("L", (8, 8), 6 * k).save(tmp_path / name / f"{k}.png")
        cfg = TrainConfig(model="pixelcnn", data="folder", data_dir=str(tmp_path / name),
                          data_options={"size": 8, "channels": 1, "levels": 4}, steps=1,
                          batch_size=4, samples=0, overrides={"blocks": 1})  # fmt: skip
        train(cfg, tmp_path / f"run-{name}", progress=False)
    with pytest.raises(
        InputError, match=r"one dataset.*folder in .*one.*folder in .*two.*--data-dir"
    ):
        compare([tmp_path / "run-one", tmp_path / "run-two"], tmp_path / "r", progress=False)
    # --data-dir reads both from one folder (as for a run trained elsewhere): one dataset.
    out = tmp_path / "joined"
    args = ["compare", str(tmp_path / "run-one"), str(tmp_path / "run-two"), "--data-dir",
            str(tmp_path / "two"), "--samples", "4", "--compress-images", "0",
            "--no-naive-timing", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "| run-one |" in (out / "report.md").read_text()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    nats = [r["nats"] for r in records if r["model"] == "pixelcnn"]
    assert len(nats) == 2 and all(math.isfinite(v) for v in nats)


def test_samples_are_drawn_once_into_the_cache(runs, tmp_path):
    from pixelzoo.report.measure import draw_samples
    from pixelzoo.runs import Run

    cfg = MeasureConfig(
        samples=20, ais=False, naive_timing=False, bootstrap=10, sample_cache=tmp_path / "cache"
    )
    run = Run(runs / "pixelcnn")
    model = run.load_model()
    first = draw_samples(run, model, 20, cfg)
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and run.run_id in files[0].name and "-n20-seed0" in files[0].name
    # Read back, not drawn again: the same images even if the model were another.
    assert torch.equal(draw_samples(run, None, 20, cfg), first)
    assert first.shape == (20, 1, 8, 8) and int(first.max()) <= 16


def test_a_class_conditional_model_gets_its_samples_one_row_a_class(tmp_path):
    from PIL import Image

    from pixelzoo.report.measure import measure_run
    from pixelzoo.training import TrainConfig, train

    run = tmp_path / "cond"
    train(
        TrainConfig(model="gated_pixelcnn", preset="tiny", cond="class", steps=2, samples=0),
        run, progress=False,
    )  # fmt: skip
    cfg = MeasureConfig(samples=40, naive_timing=False, ais=False, nll_images=20)
    rec = measure_run(run, tmp_path / "out", None, cfg)
    assert rec["class_names"] == list("0123456789")
    grid = Image.open(tmp_path / "out" / rec["class_samples_image"])
    # 10 rows (the classes) of 4 samples (40 samples, 10 classes), 8x8 images scaled by 8.
    assert grid.size == ((4 * 9 + 1) * 8, (10 * 9 + 1) * 8)


def test_sample_metrics_at_different_sample_counts_are_not_ranked():
    from pixelzoo.report.verdict import Metric, compare_pair

    a = _rec("a", fid=(80.0, 70.0, 90.0))
    slow = {**_rec("slow", fid=(300.0, 280.0, 320.0)), "samples": 59}  # a slow sampler's few
    sep, how = compare_pair(a, slow, Metric("fid", "FID", True))
    assert not sep and how == "at 59 samples, not 200"
    assert compare_pair(a, {**slow, "samples": 200}, Metric("fid", "FID", True))[0]
    # Sampling time is measured on 16 images whatever the sample count: still ranked.
    fast = {**a, "sample_seconds": 0.004, "sample_seconds_range": [0.0039, 0.0048]}
    slow = {**slow, "sample_seconds": 181.0, "sample_seconds_range": [181.0, 181.0]}
    assert compare_pair(fast, slow, Metric("sample_seconds", "time", True)) == (True, "")
