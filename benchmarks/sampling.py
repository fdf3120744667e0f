"""Sampling speed: naive vs cached, against one forward pass. Prints one JSON object.

For each configuration, 16 images from a freshly initialised model (speed does
not depend on the weights):

* ``forward_s``: one forward pass over the batch, the arithmetic floor of any
  sampler (the cached one computes every activation once): the median of 9 after
  two warm-ups where a pass takes under a second, of 3 otherwise (on this shared
  machine single small passes were seen to vary 3x);
* ``cached_s``: the model's cached stepper (``model.cached_stepper``), the whole
  batch: the median of 3 runs where one takes under 5 s, else one run
  (``cached_runs``);
* ``naive_s``: the naive sampler, measured in full with ``--full-naive``
  (where it takes minutes); otherwise estimated as ``forward_s x draws``, since the
  naive sampler is exactly one forward pass per draw (``naive_estimated: true``);
* ``speedup = naive_s / cached_s`` and ``cached_over_forward = cached_s / forward_s``;
* with ``--full-naive``, ``identical``: whether both samplers drew the same images
  from the same seed in float32 (the tests check this in float64).

The cached sampler runs on one thread whatever ``--threads`` says (its loop of
small operations: ``pixelzoo/utils/threads.py``), so ``--threads 1`` compares like
with like.

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


def timed(fn):
    """``(seconds, result)`` of one call."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def run(name: str, n: int, full_naive: bool) -> dict:
    model_name, preset, shape, levels = CONFIGS[name]
    torch.manual_seed(0)
    model = models.build(model_name, shape, levels, preset).eval()
    x = torch.zeros(n, *shape, dtype=torch.long)
    with torch.no_grad(), parametrize.cached():
        first = timed(lambda: model(x))[0]  # warm-up
        repeats = 9 if first < 1.0 else 3
        if first < 1.0:
            model(x)
        forward = statistics.median(timed(lambda: model(x))[0] for _ in range(repeats))
    draws = shape[1] * shape[2] * (1 if model.likelihood.joint else shape[0])

    def draw():
        return model.sample(n, generator=torch.Generator().manual_seed(0), sampler="cached")

    cached_times = [timed(draw)]
    if cached_times[0][0] < 5.0:
        cached_times += [timed(draw) for _ in range(2)]
    cached_s = statistics.median(t for t, _ in cached_times)
    cached = cached_times[0][1]
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
        "cached_runs": len(cached_times),
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
