"""Test NLL on (binarized) MNIST after a fixed budget of training time.

Trains a model for ``--minutes`` of training-step time (validation and sampling
not counted), then evaluates the exact test NLL of the best-validation
checkpoint over all 10,000 test images. Prints one JSON object.

    python benchmarks/nll_budget.py --data-dir ../shared/data/binarized_mnist --minutes 30
    # class-conditional, on dynamically binarized MNIST (which has labels):
    python benchmarks/nll_budget.py --data mnist --data-option binarize=dynamic \
        --data-dir ../shared/data/mnist --model gated_pixelcnn --cond class
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from pixelzoo import data
from pixelzoo.evaluation import evaluate_nll
from pixelzoo.runs import Run
from pixelzoo.training import TrainConfig, load_model, train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="binarized_mnist")
    p.add_argument("--data-dir", required=True)
    p.add_argument(
        "--data-option", action="append", default=[], metavar="KEY=VALUE", help="dataset option"
    )
    p.add_argument("--cond", default=None, choices=["class"], help="train p(x | label)")
    p.add_argument("--micro-batch", type=int, default=None, help="accumulate in chunks")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--model", default="pixelcnn")
    p.add_argument("--preset", default="binarized_mnist_cpu")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-decay", type=float, default=0.9997)
    p.add_argument("--amp", action="store_true", help="bfloat16 autocast for training steps")
    p.add_argument("--ema", type=float, default=None, help="Polyak averaging decay")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="model setting")
    args = p.parse_args()

    cfg = TrainConfig(
        model=args.model,
        preset=args.preset,
        data=args.data,
        data_dir=args.data_dir,
        cond=args.cond,
        micro_batch=args.micro_batch,
        minutes=args.minutes,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        lr_decay=args.lr_decay,
        amp=args.amp,
        ema=args.ema,
        device=args.device,
        log_every=100,
        ckpt_every=1000,
        samples=16,
    ).with_sets(args.set + [f"data.{o}" for o in args.data_option])
    options = cfg.data_options
    t0 = time.time()
    result = train(cfg, args.out, progress=False)
    wall = time.time() - t0
    model = load_model(
        args.out, "best", "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
    )
    test = evaluate_nll(model, data.load(args.data, "test", args.data_dir, **options), 500)
    print(
        json.dumps(
            {
                "benchmark": "nll_budget",
                "model": args.model,
                "data": {"name": args.data, "options": options},
                "cond": args.cond,
                "config": Run(args.out).model_spec["config"],
                "train": {
                    "minutes_budget": args.minutes,
                    "batch_size": args.batch_size,
                    "lr": args.lr,
                    "lr_decay": args.lr_decay,
                    "amp": args.amp,
                    "ema": args.ema,
                    "micro_batch": args.micro_batch,
                    "steps": result["step"],
                },
                "wall_seconds": round(wall, 1),
                "best_valid_nats": result["best_valid"],
                "test_nats": test["nats"],
                "test_bits_per_dim": test["bits_per_dim"],
                "test_images": test["images"],
                "machine": {
                    "cpu": platform.processor() or platform.machine(),
                    "threads": torch.get_num_threads(),
                    "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                },
                "torch": torch.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
