"""The full comparison on binarized MNIST: every family at an equal training budget, one report.

Trains PixelCNN, Gated PixelCNN, Diagonal BiLSTM, PixelCNN++, DCGAN and the VAE
on the static binarized MNIST for the same number of minutes of training-step
time each (validation and sample grids are not counted), trains the evaluator
classifier on MNIST (dynamically binarized, so it sees binary digits with
labels), then runs ``compare``: exact NLL on all 10,000 test images, AIS with
BDMC for DCGAN and the VAE, FID/KID/IS on the evaluator, MS-SSIM, SWD, modes,
closest pairs and sampling time. Runs that already finished are reused, so an
interrupted benchmark continues. Prints one JSON object; the report goes to --out
(the committed one is docs/comparison-bmnist/).

    OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/comparison.py --data ../shared/data \
        --runs runs/bmnist --minutes 12 --out docs/comparison-bmnist
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import torch

from pixelzoo.evaluation.ais import AISConfig
from pixelzoo.report import KEYS, MeasureConfig, compare
from pixelzoo.runs import read_metrics
from pixelzoo.training import EvaluatorTraining, TrainConfig, train, train_evaluator

# Validation is not counted in the budget, but the VAE's (IWAE-64 on 10,000 images: 7 minutes on
# one core, against 36 s for an epoch) would make its run take hours: it validates at the end only.
EXTRA = {"vae": {"valid_every": 1000}}
MODELS = (  # (model, preset): CPU-sized presets, each trained with its family's default optimizer
    ("pixelcnn", "binarized_mnist_cpu"),
    ("gated_pixelcnn", "binarized_mnist_cpu"),
    ("diagonal_bilstm", "binarized_mnist"),
    ("pixelcnn_pp", "binarized_mnist"),
    ("dcgan", "binarized_mnist"),
    ("vae", "binarized_mnist"),
)


def trained_seconds(run: Path) -> float:
    if not (run / "checkpoints" / "last.json").exists():
        return 0.0
    return max((r.get("train_seconds") or 0.0 for r in read_metrics(run)), default=0.0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data", default="../shared/data", help="folder with binarized_mnist/ and mnist/"
    )
    p.add_argument("--runs", default="runs/bmnist-comparison")
    p.add_argument("--out", default="docs/comparison-bmnist")
    p.add_argument("--minutes", type=float, default=12.0, help="training-step minutes per model")
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
    p.add_argument("--only", default=None, help="comma-separated models (default: all)")
    p.add_argument(
        "--train-only", action="store_true", help="train (or finish) the runs, then stop"
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args()
    data, runs = Path(args.data), Path(args.runs)
    chosen = [m for m in MODELS if args.only is None or m[0] in args.only.split(",")]
    for name, preset in chosen:
        run = runs / name
        if trained_seconds(run) >= 60 * args.minutes:
            continue
        cfg = TrainConfig(
            model=name, preset=preset, data="binarized_mnist", data_dir=str(data / "binarized_mnist"),
            minutes=args.minutes, epochs=1000, amp=True, **EXTRA.get(name, {}),
        )  # fmt: skip
        train(cfg, run, resume=(run / "config.json").exists(), progress=not args.no_progress)
    evaluator = runs.parent / "evaluator-bmnist"
    finished = evaluator.exists() and any(r.get("split") == "test" for r in read_metrics(evaluator))
    if evaluator.exists() and not finished:
        shutil.rmtree(evaluator)  # interrupted before its test accuracy: they train in minutes
    if not finished:
        train_evaluator(
            EvaluatorTraining(data="mnist", data_dir=str(data / "mnist"), data_options={"binarize": "dynamic"}),
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
    )  # fmt: skip
    t0 = time.time()
    note = (
        f"Budget: {args.minutes:g} minutes of training-step time per model on one core of a 2-core AMD EPYC "
        "(OMP_NUM_THREADS=1, bf16 autocast), batch 64, each family's default optimizer; validation "
        "and sample grids not counted. CPU-sized presets, far from the papers' budgets: read the "
        "comparison at equal compute, not against published numbers. Measured (NLL, samples, "
        f"timings) with {torch.get_num_threads()} threads."
    )
    result = compare(
        [runs / n for n, _ in chosen], args.out, evaluator_dir=evaluator, cfg=cfg,
        progress=not args.no_progress, title="pixelzoo comparison: binarized MNIST at an equal CPU budget",
        notes=[note],
    )  # fmt: skip
    print(
        json.dumps(
            {
                "benchmark": "comparison",
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
