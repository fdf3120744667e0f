"""The full comparison: every family at an equal training budget, one report.

``--dataset bmnist`` (the default) trains PixelCNN, Gated PixelCNN, Diagonal
BiLSTM, PixelCNN++, DCGAN and the VAE on the static binarized MNIST, and the
evaluator classifier on MNIST (dynamically binarized, so it sees binary digits
with labels). ``--dataset cifar10-jpeg`` trains PixelCNN, Gated PixelCNN and
PixelCNN++ (each also class-conditional where it can be), DCGAN, PGGAN and the
VAE at their ``cifar10_cpu`` presets on the labelled image folder
``cifar10-jpeg`` (256 levels), and the evaluator on the same folder. Every model
gets the same minutes of wall time, as ``--minutes`` counts them: training steps,
validation (held to at most 20% of the time by a fixed validation subset, see
``TrainConfig.valid_share``), sample grids and checkpoints; the report gives each
run's training-step time and wall time. Then ``compare`` measures exact NLL on
all 10,000 test images, AIS with BDMC for the GANs and the VAE, FID/KID/IS,
precision/recall, memorization, MS-SSIM, SWD, modes, closest pairs and sampling
time, each with its interval.
Runs that already finished are reused, so an interrupted benchmark continues.
Prints one JSON object; the report goes to --out (the committed ones are
docs/comparison-bmnist/ and docs/comparison-cifar10-jpeg/).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/comparison.py --data ../shared/data \
        --runs runs/bmnist --minutes 12 --out docs/comparison-bmnist
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from pixelzoo.evaluation.ais import AISConfig
from pixelzoo.report import KEYS, MeasureConfig, compare
from pixelzoo.runs import read_metrics
from pixelzoo.training import (
    EvaluatorTraining,
    TrainConfig,
    train_evaluator,
    train_side_by_side,
    train_to_budget,
)
from pixelzoo.training.trainer import fast_bfloat16


@dataclass(frozen=True)
class Setup:
    """One comparison: the data, the runs (name, model, preset, extra settings), the evaluator's data."""

    title: str
    data: str
    folder: str
    runs: tuple[tuple[str, str, str, dict], ...]
    evaluator_data: str
    evaluator_folder: str
    evaluator_options: dict = field(default_factory=dict)
    caveat: str = ""


# The VAE's validation (IWAE-64: 7 minutes on one core for 10,000 images, against 36 s for an
# epoch) is held to its share of the budget like every model's, by a smaller validation subset.
VAE: dict = {}
SETUPS = {
    "bmnist": Setup(
        title="binarized MNIST",
        data="binarized_mnist",
        folder="binarized_mnist",
        runs=(  # CPU-sized presets, each trained with its family's default optimizer
            ("pixelcnn", "pixelcnn", "binarized_mnist_cpu", {}),
            ("gated_pixelcnn", "gated_pixelcnn", "binarized_mnist_cpu", {}),
            ("diagonal_bilstm", "diagonal_bilstm", "binarized_mnist", {}),
            ("pixelcnn_pp", "pixelcnn_pp", "binarized_mnist", {}),
            ("dcgan", "dcgan", "binarized_mnist", {}),
            ("vae", "vae", "binarized_mnist", VAE),
        ),
        evaluator_data="mnist",
        evaluator_folder="mnist",
        evaluator_options={"binarize": "dynamic"},
    ),
    "cifar10-jpeg": Setup(
        title="CIFAR-10 (decoded JPEGs)",
        data="folder",
        folder="cifar10-jpeg",
        runs=(
            ("pixelcnn", "pixelcnn", "cifar10_cpu", {}),
            ("gated_pixelcnn", "gated_pixelcnn", "cifar10_cpu", {}),
            ("gated_pixelcnn-class", "gated_pixelcnn", "cifar10_cpu", {"cond": "class"}),
            ("pixelcnn_pp", "pixelcnn_pp", "cifar10_cpu", {}),
            ("pixelcnn_pp-class", "pixelcnn_pp", "cifar10_cpu", {"cond": "class"}),
            ("dcgan", "dcgan", "cifar10_cpu", {}),
            ("pggan", "pggan", "cifar10_cpu", {}),
            ("vae", "vae", "cifar10_cpu", VAE),
        ),
        evaluator_data="folder",
        evaluator_folder="cifar10-jpeg",
        caveat=(
            "The images are CIFAR-10 as decoded JPEGs (quality about 75, 4:2:0 chroma): smoother "
            "than the original bytes, so bits/dim here are not comparable with published "
            "CIFAR-10 figures (2.92 for PixelCNN++); compare the models with each other only."
        ),
    ),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="bmnist", choices=sorted(SETUPS))
    p.add_argument("--data", default="../shared/data", help="folder holding the datasets' folders")
    p.add_argument("--runs", default=None, help="folder of the runs (default: runs/DATASET)")
    p.add_argument("--out", default=None, help="report folder (default: docs/comparison-DATASET)")
    p.add_argument("--minutes", type=float, default=12.0, help="wall minutes per model")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=5000, help="see benchmarks/sample_size.py")
    p.add_argument("--sample-cache", default=None, help="a folder keeping drawn samples")
    p.add_argument(
        "--max-sample-minutes",
        type=float,
        default=10.0,
        help="fewer samples for a model whose sampler would take longer",
    )
    p.add_argument("--ais-images", type=int, default=50)
    p.add_argument("--ais-steps", type=int, default=500, help="where AIS starts doubling")
    p.add_argument("--ais-chains", type=int, default=4)
    p.add_argument("--ais-target-gap", type=float, default=1.0)
    p.add_argument("--ais-max-steps", type=int, default=16_000)
    p.add_argument(
        "--compress-images", type=int, default=100,
        help="test images each autoregressive model compresses into a real file (0: none)",
    )  # fmt: skip
    p.add_argument("--evaluator-epochs", type=int, default=None)
    p.add_argument(
        "--evaluator-minutes", type=float, default=None,
        help="also stop the evaluator's training after this many minutes",
    )  # fmt: skip
    p.add_argument(
        "--inception", default=None, metavar="FILE",
        help="Inception-v3 weights: the report adds Inception FID/KID/IS to the evaluator's",
    )  # fmt: skip
    p.add_argument(
        "--note", action="append", default=[],
        help="a sentence for the report's notes (e.g. what else ran on the machine)",
    )  # fmt: skip
    p.add_argument("--only", default=None, help="comma-separated run names (default: all)")
    p.add_argument(
        "--train-only", action="store_true", help="train (or finish) the runs, then stop"
    )
    p.add_argument(
        "--no-train", action="store_true",
        help="measure the runs as they are, neither training nor resuming any (say why in --note)",
    )  # fmt: skip
    p.add_argument(
        "--no-ais", action="store_true",
        help="no AIS for the decoder models (GANs then have no NLL; the VAE keeps its IWAE bound)",
    )  # fmt: skip
    p.add_argument(
        "--no-naive-timing", action="store_true",
        help="do not time the naive samplers (on 32x32 colour one 16-image draw takes minutes)",
    )  # fmt: skip
    p.add_argument(
        "--nll-images", type=int, default=None,
        help="the first N test images for every model's NLL (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--train-threads", type=int, default=None,
        help="threads per run: with --jobs > 1 the runs train with it (default 1), else it is what "
        "they were trained with, for the report (default: this process's)",
    )  # fmt: skip
    p.add_argument(
        "--jobs", type=int, default=1,
        help="runs trained at once, each in its own process with --train-threads (default 1) threads",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    setup = SETUPS[args.dataset]
    data = Path(args.data)
    runs = Path(args.runs or f"runs/{args.dataset}")
    out = args.out or f"docs/comparison-{args.dataset}"
    chosen = [r for r in setup.runs if args.only is None or r[0] in args.only.split(",")]
    jobs = [
        (TrainConfig(
            model=model, preset=preset, data=setup.data, data_dir=str(data / setup.folder),
            minutes=args.minutes, epochs=1000, amp=fast_bfloat16("cpu"), batch_size=args.batch_size, **extra,
        ), runs / name)
        for name, model, preset, extra in chosen
    ]  # fmt: skip
    train_threads = args.train_threads or (1 if args.jobs > 1 else torch.get_num_threads())
    if args.no_train:
        pass
    elif args.jobs > 1:
        train_side_by_side(jobs, processes=args.jobs, threads=train_threads)
    else:  # one after another, in this process and with its progress bars
        for cfg, run in jobs:
            train_to_budget(cfg, run, progress=not args.no_progress)
    evaluator = runs.parent / f"evaluator-{args.dataset}"
    finished = evaluator.exists() and any(r.get("split") == "test" for r in read_metrics(evaluator))
    if evaluator.exists() and not finished:
        shutil.rmtree(evaluator)  # interrupted before its test accuracy: they train in minutes
    if not finished:
        train_evaluator(
            EvaluatorTraining(
                data=setup.evaluator_data, data_dir=str(data / setup.evaluator_folder),
                data_options=setup.evaluator_options, epochs=args.evaluator_epochs,
                minutes=args.evaluator_minutes,
            ),
            evaluator, progress=not args.no_progress,
        )  # fmt: skip
    if args.train_only:
        return
    cfg = MeasureConfig(
        samples=args.samples, ais_images=args.ais_images, bdmc_images=16,
        max_sample_seconds=args.max_sample_minutes * 60,
        ais_config=AISConfig(steps=args.ais_steps, chains=args.ais_chains, leapfrog=5),
        ais_target_gap=args.ais_target_gap, ais_max_steps=args.ais_max_steps,
        sample_cache=Path(args.sample_cache) if args.sample_cache else None,
        compress_images=args.compress_images, nll_images=args.nll_images,
        naive_timing=not args.no_naive_timing, ais=not args.no_ais,
    )  # fmt: skip
    t0 = time.time()
    threads = torch.get_num_threads()
    note = (
        f"Budget: {args.minutes:g} minutes of wall time per model "
        f"({train_threads} thread(s) of {platform.processor() or platform.machine()}, "
        f"{args.jobs} run(s) at once, "
        f"{'bf16 autocast' if fast_bfloat16('cpu') else 'float32 (no native bf16)'}, batch {args.batch_size}, each family's default optimizer; "
        "validation (at most 20% of it), sample grids and checkpoints counted). CPU-sized presets, far from the papers' budgets: read the "
        "comparison at equal compute, not against published numbers. Measured (NLL, samples, "
        f"timings) with {threads} thread(s)."
    )
    result = compare(
        [runs / r[0] for r in chosen], out, evaluator_dir=evaluator, inception=args.inception,
        cfg=cfg, progress=not args.no_progress,
        title=f"pixelzoo comparison: {setup.title} at an equal CPU budget",
        notes=[note] + ([setup.caveat] if setup.caveat else []) + args.note,
    )  # fmt: skip
    print(
        json.dumps(
            {
                "benchmark": "comparison",
                "dataset": args.dataset,
                "minutes_per_model": args.minutes,
                "compare_seconds": round(time.time() - t0, 1),
                "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "records": [
                    {
                        k: r.get(k)
                        for k in ("label", *KEYS)
                        if not isinstance(r.get(k), torch.Tensor)
                    }
                    for r in result["records"]
                ],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
