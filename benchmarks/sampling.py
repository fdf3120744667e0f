"""Sampling speed: naive vs cached, against one forward pass. Prints one JSON object.

For each configuration, 16 images from a freshly initialised model (speed does
not depend on the weights):

* ``forward_s``: one forward pass over the batch (the median of 3), the
  arithmetic floor of any sampler (the cached one computes every activation once);
* ``cached_s``: the model's cached stepper (``model.cached_stepper``), the whole batch;
* ``naive_s``: the naive sampler, measured in full with ``--full-naive``
  (where it takes minutes); otherwise estimated as ``forward_s x draws``, since the
  naive sampler is exactly one forward pass per draw (``naive_estimated: true``);
* ``speedup = naive_s / cached_s`` and ``cached_over_forward = cached_s / forward_s``;
* with ``--full-naive``, ``identical``: whether both samplers drew the same images
  from the same seed in float32 (the tests check this in float64).

    python benchmarks/sampling.py                      # all configurations
    python benchmarks/sampling.py --only pixelcnn_pp_cifar10 --threads 1
    python benchmarks/sampling.py --bmnist --threads 1  # every binarized-MNIST preset
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
from torch.nn.utils import parametrize

from pixelzoo import models

CONFIGS = {
    # name: (model, preset, image shape, levels)
    "pixelcnn_pp_cifar10": ("pixelcnn_pp", "cifar10", (3, 32, 32), 256),
    "pixelcnn_pp_mnist": ("pixelcnn_pp", "mnist", (1, 28, 28), 256),
    "gated_pixelcnn_bmnist_cpu": ("gated_pixelcnn", "binarized_mnist_cpu", (1, 28, 28), 2),
    "gated_pixelcnn_cifar10_rgb_small": ("gated_pixelcnn", "default", (3, 32, 32), 256),
    "pixelcnn_bmnist_cpu": ("pixelcnn", "binarized_mnist_cpu", (1, 28, 28), 2),
    # The other binarized-MNIST presets (issue 19's target: cached >= 50x naive and
    # <= 10x one forward pass for every one of them).
    "pixelcnn_bmnist": ("pixelcnn", "binarized_mnist", (1, 28, 28), 2),
    "gated_pixelcnn_bmnist": ("gated_pixelcnn", "binarized_mnist", (1, 28, 28), 2),
    "pixelcnn_pp_bmnist": ("pixelcnn_pp", "binarized_mnist", (1, 28, 28), 2),
    # The paper's MNIST PixelRNNs (7 layers, h = 16).
    "row_lstm_bmnist": ("row_lstm", "binarized_mnist", (1, 28, 28), 2),
    "diagonal_bilstm_bmnist": ("diagonal_bilstm", "binarized_mnist", (1, 28, 28), 2),
}


def run(name: str, n: int, full_naive: bool) -> dict:
    model_name, preset, shape, levels = CONFIGS[name]
    torch.manual_seed(0)
    model = models.build(model_name, shape, levels, preset).eval()
    x = torch.zeros(n, *shape, dtype=torch.long)
    with torch.no_grad(), parametrize.cached():
        model(x)  # warm-up
        times = []
        for _ in range(3):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    forward = statistics.median(times)
    draws = shape[1] * shape[2] * (1 if model.likelihood.joint else shape[0])

    t = time.perf_counter()
    cached = model.sample(n, generator=torch.Generator().manual_seed(0), sampler="cached")
    cached_s = time.perf_counter() - t
    out = {
        "config": name,
        "model": model_name,
        "preset": preset,
        "image_shape": list(shape),
        "levels": levels,
        "n": n,
        "params": sum(p.numel() for p in model.parameters()),
        "draws": draws,
        "forward_s": round(forward, 4),
        "cached_s": round(cached_s, 3),
        "cached_over_forward": round(cached_s / forward, 2),
    }
    if full_naive:
        t = time.perf_counter()
        naive = model.sample(n, generator=torch.Generator().manual_seed(0), sampler="naive")
        out["naive_s"] = round(time.perf_counter() - t, 2)
        out["naive_estimated"] = False
        out["identical"] = bool(torch.equal(naive, cached))
        out["differing_subpixels"] = int((naive != cached).sum())
    else:
        out["naive_s"] = round(forward * draws, 1)
        out["naive_estimated"] = True
    out["speedup"] = round(out["naive_s"] / cached_s, 1)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=list(CONFIGS), help="configurations")
    p.add_argument("-n", type=int, default=16, help="images per batch")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--bmnist", action="store_true", help="every binarized-MNIST configuration")
    p.add_argument("--full-naive", action="store_true", help="run the naive sampler in full (slow)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    names = args.only or [k for k in CONFIGS if not args.bmnist or "bmnist" in k]
    results = [run(name, args.n, args.full_naive) for name in names]
    print(
        json.dumps(
            {
                "benchmark": "sampling",
                "machine": platform.processor() or platform.machine(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "results": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
