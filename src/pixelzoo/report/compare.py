"""``compare``: measure trained runs side by side and write the report; ``quick``: train, then compare.

The question the report answers is the one of the PixelCNN / GAN literature: what
does each model give for its likelihood (exact, a bound, or an AIS estimate, in
one unit), its samples (FID/KID/IS on an evaluator's features, MS-SSIM
diversity, SWD, missing modes, near-duplicates) and its speed (training
throughput, time to a given validation NLL, seconds to draw 16 images)?
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

import torch
from tqdm.auto import tqdm

from pixelzoo.errors import InputError
from pixelzoo.evaluation.classifier import load_evaluator
from pixelzoo.evaluation.msssim import ms_ssim_settings
from pixelzoo.report.measure import (
    MeasureConfig,
    Reference,
    check_comparable,
    measure_data,
    measure_run,
)
from pixelzoo.report.render import duration, markdown_table, write_report
from pixelzoo.runs import Run, read_metrics
from pixelzoo.training import EvaluatorTraining, TrainConfig, train, train_evaluator
from pixelzoo.training.trainer import resolve_device


def run_labels(runs: list[Run], labels: list[str] | None = None) -> list[str]:
    """The report's name of each run: the given labels, else the run folders' names, with
    as many parent folders as it takes to tell two runs of the same name apart."""
    if labels is not None:
        if len(labels) != len(runs):
            raise InputError(f"give one label per run: {len(labels)} labels for {len(runs)} runs")
        if len(set(labels)) != len(labels):
            raise InputError("the labels must differ from each other")
        return list(labels)
    parts = [r.path.resolve().parts for r in runs]
    depth = [1] * len(runs)
    while True:
        names = ["/".join(p[-d:]) for p, d in zip(parts, depth, strict=True)]
        clash = [i for i, n in enumerate(names) if names.count(n) > 1 and depth[i] < len(parts[i])]
        if not clash:
            return names
        for i in clash:
            depth[i] += 1


def file_stem(index: int, label: str) -> str:
    """A file-name prefix unique per report: the row's index and a filesystem-safe label."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "run"
    return f"{index:02d}-{safe[:60]}"


def _evaluator_summary(evaluator_dir, out: Path) -> str:
    tests = [r for r in read_metrics(evaluator_dir) if r.get("split") == "test"]
    acc = f", test accuracy {tests[-1]['accuracy']:.2%}" if tests else ""
    return f"the evaluator classifier in {os.path.relpath(evaluator_dir, out)}{acc}"


def _check_evaluator(net, data: dict) -> None:
    shape = tuple(net.spec.image_shape)
    c, h, w = data["image_shape"]
    if shape != (c, h, w) and shape != (1, h, w):
        raise InputError(
            f"the evaluator classifies images {list(shape)}, but the runs' data are {[c, h, w]}"
        )


def time_to_nll(records: list[dict]) -> None:
    """Add ``seconds_to_nll``: training time until the validation NLL first reached a shared target.

    The target is the worst final validation NLL among the likelihood models, so that
    every one of them reaches it.
    """
    curves = {id(r): r.get("curve_valid") or [] for r in records}
    finals = [c[-1][1] for c in curves.values() if c]
    if not finals:
        return
    target = max(finals)
    for r in records:
        hit = [t for t, v in curves[id(r)] if v <= target + 1e-9 and t is not None]
        r["seconds_to_nll"] = min(hit) if hit else None
        r["nll_target"] = target


def compare(
    run_dirs,
    out,
    *,
    evaluator_dir=None,
    inception=None,
    cfg: MeasureConfig | None = None,
    labels: list[str] | None = None,
    progress: bool = True,
    title: str | None = None,
    notes: list[str] | None = None,
    data_dir=None,
) -> dict:
    """Measure every run in ``run_dirs`` and write the report into ``out``.

    Returns ``{"records", "out", "summary"}``: one record a row (the real data first),
    the report folder, and the table as Markdown text. ``labels`` name the runs in the
    report (default: their folders' names, made unique). The feature network of
    FID / KID / IS is the evaluator classifier in ``evaluator_dir`` (digit-like data;
    it also counts modes) or Inception-v3 with the weights file ``inception``
    (natural images); given both, the evaluator's features give every feature metric
    and Inception-v3 adds its own FID, KID and IS (a table of their own, labelled);
    with neither, those metrics are left out. ``data_dir`` reads every run's dataset
    from that folder instead of the ones their configs record (runs trained elsewhere:
    a shipped model records the folder it was trained from, relative to where it ran).
    """
    cfg = cfg or MeasureConfig()
    cfg.ais_config.validate()
    if not run_dirs:
        raise InputError("compare needs at least one run folder (or --quick)")
    runs = [Run(r, data_dir) for r in run_dirs]
    data = check_comparable(runs)
    names = run_labels(runs, labels)
    evaluator = beside = None
    if inception is not None:
        from pixelzoo.evaluation.inception import load_inception

        beside = load_inception(inception, cfg.device)
    if evaluator_dir is not None:
        evaluator = load_evaluator(evaluator_dir, cfg.device)
        _check_evaluator(evaluator, data)
    else:  # Inception alone is the feature network of every feature metric
        evaluator, beside = beside, None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(runs) + 1, desc="compare", unit="run", disable=not progress)
    say = bar.set_postfix_str
    torch.manual_seed(cfg.seed)
    say("reference images")
    reference = Reference.of(runs[0], evaluator, cfg, inception=beside)
    records = [
        measure_data(runs[0], out, evaluator, cfg, reference=reference, name=file_stem(0, "data"))
    ]
    bar.update(1)
    for k, (run, label) in enumerate(zip(runs, names, strict=True), start=1):
        records.append(
            measure_run(
                run,
                out,
                evaluator,
                cfg,
                reference=reference,
                progress=say,
                label=label,
                name=file_stem(k, label),
            )  # fmt: skip
        )
        bar.update(1)
    bar.close()
    for r in records:  # the report names folders relative to itself, not this machine's paths
        if r.get("run"):
            r["run"] = os.path.relpath(r["run"], out)
    time_to_nll(records)
    c, h, w = data["image_shape"]
    ac = cfg.ais_config
    where = (
        _evaluator_summary(evaluator_dir, out)
        + (
            f"; Inception FID/KID/IS with Inception-v3 ({Path(inception).name})"
            if inception
            else ""
        )
        if evaluator_dir
        else f"Inception-v3 ({Path(inception).name}); no modes"
        if inception
        else "no feature network given (FID, KID, IS, precision/recall, memorization and modes left out)"
    )
    lines = [
        f"Dataset {data['data']}: {c}x{h}x{w} images with {data['levels']} levels; sample metrics on "
        f"{records[0]['samples']:,} generated images against as many test images.",
        f"Feature metrics: {where}.",
        f"Measured on {platform.machine()} ({platform.processor() or 'cpu'}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {cfg.device}, {datetime.date.today().isoformat()}.",
    ]
    observed = "; ".join(
        f"{r['label']}: {r['observation']}"
        for r in records
        if r.get("observation") and r["nats_kind"] == "ais"
    )
    default_notes = [
        "NLL: exact for autoregressive models, over the test images; '(bound)' is the VAE's IWAE bound, "
        "an upper bound on the NLL; '(AIS)' is an annealed-importance-sampling estimate (Wu et al. 2017), "
        "a stochastic upper bound on the NLL. The route column says which gave the figure; a model with "
        "two upper bounds shows the tighter one, compared on the same images.",
        f"AIS: {ac.chains} chains and {ac.leapfrog} leapfrog steps an image on {cfg.ais_images} test images, "
        f"its steps doubled from {ac.steps} until the BDMC gap (forward against reverse AIS on "
        f"{cfg.bdmc_images} images simulated from the model, between which the true value lies) is below "
        f"{cfg.ais_target_gap:g} nats/image or {cfg.ais_max_steps:,} steps are spent; a figure that missed "
        "the target is marked loose.",
        "GANs are observed through Bernoulli(G(z)) with a pixel-flip noise (binary data) or a Gaussian "
        "discretized to the levels; the noise is "
        + (
            "chosen on validation images from a grid by a short AIS (Wu et al. 2017)"
            if cfg.gan_noise is None
            else f"fixed at {cfg.gan_noise:g}"
        )  # fmt: skip
        + (f", and the AIS number depends on it: {observed}." if observed else "."),
        (
            "FID, KID and IS use Inception-v3's 2048 pool features and its 1008 logits without the final "
            "bias (as the original Inception Score code; pytorch-fid's resize)."
            if inception and not evaluator_dir
            else "FID, KID, IS, precision/recall/density/coverage and memorization use the evaluator's "
            "features and class probabilities, not Inception-v3: they rank models on this data but are not "
            "comparable with published Inception numbers."
            + (
                " The Inception table's FID, KID and IS use Inception-v3's 2048 pool features and its "
                "1008 logits without the final bias (as the original Inception Score code; pytorch-fid's "
                "resize of the images to 299x299): the published kind of figure."
                if inception
                else ""
            )
        )
        + " KID is unbiased; FID is biased upward at small sample sizes (compare it against the real "
        "held-out images' FID at the same size). IS: one split over all samples.",
        f"Precision and recall (Kynkaanniemi et al. 2019) and density and coverage (Naeem et al. 2020) on "
        f"k={cfg.prdc_k} nearest-neighbour manifolds. Memorized: the fraction of samples closer to a training "
        f"image than {cfg.memorization_quantile:.0%} of held-out test images are (a model that generalises "
        f"scores about {cfg.memorization_quantile:.0%}); copies: samples identical to a training image.",
        f"MS-SSIM: mean over 1000 random sample pairs ({ms_ssim_settings(h, w)['scales']} scales at this size); "
        "higher means less diverse. SWD (x1e3): Laplacian-pyramid 7x7 patches, Karras et al. 2018.",
        "Modes: classes (or digit triples, for stacked data) the evaluator finds among the samples; KL is "
        "KL(samples || uniform) in nats. Closest pair: the smallest Euclidean distance between two samples, "
        "intensities in [0, 1] (0 = an exact duplicate).",
        f"Sample 16: seconds to draw 16 images with the model's default sampler (cached where the model "
        f"has one; the naive sampler after it), the median of up to {cfg.timing_runs} runs with their range, "
        "on this machine.",
        f"Bootstrap intervals use {cfg.bootstrap} resamples; SWD's, {cfg.swd_parts} disjoint parts.",
    ]
    reach = [r for r in records if r.get("seconds_to_nll") is not None]
    if reach:
        target = reach[0]["nll_target"]
        default_notes.append(
            f"Time to a validation NLL of {target:.2f} nats (the worst final one): "
            + ", ".join(f"{r['label']} {duration(r['seconds_to_nll'])}" for r in reach)
            + "."
        )
    write_report(
        records,
        out,
        {
            "title": title or f"pixelzoo comparison: {data['data']}",
            "lines": lines,
            "notes": (notes or []) + default_notes,
        },
    )
    return {"records": records, "out": out, "summary": markdown_table(records)}


QUICK_MODELS = ("pixelcnn", "gated_pixelcnn", "pixelcnn_pp", "dcgan", "vae")


def quick(
    out, *, progress: bool = True, epochs: int = 20, minutes: float = 0.75, device: str = "auto"
) -> dict:
    """Train small models and the evaluator on the embedded digits, then compare them.

    Each model trains with its ``digits``/``default`` preset for ``epochs`` epochs or
    ``minutes`` minutes of wall time (validation, held to its default share, included),
    whichever comes first; a few minutes in all on 2 cores.
    """
    out = Path(out)
    runs = out / "runs"
    evaluator_dir = runs / "evaluator"
    if not (evaluator_dir / "checkpoints" / "best.json").exists():
        train_evaluator(
            EvaluatorTraining(data="digits", device=device), evaluator_dir, progress=progress
        )
    run_dirs = []
    for name in QUICK_MODELS:
        run = runs / name
        if not (run / "checkpoints" / "last.json").exists():
            cfg = TrainConfig(
                model=name, data="digits", epochs=epochs, minutes=minutes, device=device
            )
            train(cfg, run, resume=(run / "config.json").exists(), progress=progress)
        run_dirs.append(run)
    note = (
        f"Quick comparison: every model trained on the embedded 8x8 digits (1,258 training images) for "
        f"{epochs} epochs or {minutes:g} minutes of wall time each (validation at most 20% of it, "
        "sample grids and checkpoints included; the table gives both times), whichever came first; small models, so "
        "read the ranking, not the absolute numbers."
    )
    cfg = MeasureConfig(samples=359, ais_images=100, bdmc_images=16, ais_max_steps=1600,
                        device=resolve_device(device))  # fmt: skip
    cfg.ais_config.steps, cfg.ais_config.leapfrog, cfg.ais_config.chains = 200, 5, 4
    return compare(
        run_dirs, out, evaluator_dir=evaluator_dir, cfg=cfg, progress=progress, notes=[note]
    )
