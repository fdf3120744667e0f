"""How many samples a comparison needs: FID/KID intervals against the number of samples.

For the real held-out data (training images scored against test images) and each
given run, the largest count of samples is drawn once (kept in --sample-cache, so
the comparison reuses them) and its first n images are scored against the first n
test images, for every n of --sizes: FID and KID with their bootstrap intervals
(pixelzoo.evaluation.features), and whether the real data's interval is separated
from each model's. Prints one JSON object:

    python benchmarks/sample_size.py /work/bench/runs/{pixelcnn,dcgan,vae} \\
        --evaluator /work/bench/evaluator-bmnist --sizes 200,1000,5000 --sample-cache /work/bench/samples
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from pixelzoo.evaluation.classifier import load_evaluator
from pixelzoo.evaluation.features import FeatureSet, extract, feature_metrics
from pixelzoo.evaluation.uncertainty import separated
from pixelzoo.report.measure import MeasureConfig, draw_samples, first_images
from pixelzoo.runs import Run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="trained runs on one dataset")
    p.add_argument("--evaluator", required=True, help="the evaluator run (features)")
    p.add_argument("--sizes", default="200,1000,5000")
    p.add_argument("--reps", type=int, default=200, help="bootstrap resamples")
    p.add_argument("--sample-cache", default=None, help="folder keeping drawn samples")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    runs = [Run(r) for r in args.runs]
    evaluator = load_evaluator(args.evaluator)
    test = first_images(runs[0].load_split("test"), sizes[-1])
    train = first_images(runs[0].load_split("train"), sizes[-1])
    sizes = [n for n in sizes if n <= len(test)]
    levels = runs[0].levels
    cfg = MeasureConfig(
        seed=args.seed, sample_cache=Path(args.sample_cache) if args.sample_cache else None
    )
    test_set = extract(evaluator, test, levels)
    rows, seconds = {"data": train}, {}
    for run in runs:
        model = run.load_model()
        t0 = time.perf_counter()
        rows[run.label] = draw_samples(run, model, sizes[-1], cfg)
        seconds[run.label] = time.perf_counter() - t0
    out = {}
    for n in sizes:
        real = FeatureSet(test_set.features[:n], test_set.probs[:n])
        scores = {}
        for label, x in rows.items():
            m = feature_metrics(evaluator, test[:n], x[:n], levels, reps=args.reps, seed=args.seed,
                                real_set=real)  # fmt: skip
            scores[label] = {k: m[k] for k in ("fid", "kid")}
        out[n] = {
            label: {
                **{k: {"value": e.value, "low": e.low, "high": e.high} for k, e in s.items()},
                **({} if label == "data" else {
                    f"{k}_separated_from_data": separated(s[k], scores["data"][k]) for k in ("fid", "kid")
                }),
            }
            for label, s in scores.items()
        }  # fmt: skip
    print(
        json.dumps(
            {
                "benchmark": "sample_size",
                "sizes": sizes,
                "bootstrap": args.reps,
                "evaluator": str(args.evaluator),
                "results": out,
                "seconds_to_draw_largest": seconds,
                "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
