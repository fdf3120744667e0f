"""Loops of many small operations under load: 1 and 2 threads, idle and with a core busy.

AIS (one HMC transition is a few small forward/backward passes) and the cached
samplers (one position of every layer per step) are loops of small operations. On
a machine whose other core is busy, a loop that waits for both of its threads at
every operation can collapse (the DCGAN's AIS of ``compare --quick`` was seen to
take 45x its idle time). For each loop this measures the seconds at 1 and 2 torch
threads, on an idle machine and with one busy process beside it (a pure-Python spin
loop, the load another user's job puts on one core), interleaved in one run:

    python benchmarks/threads.py            # prints one JSON object
    python benchmarks/threads.py --repeats 3

``slowdown_under_load`` is loaded / idle seconds for each thread count;
``threads_ratio_*`` is 2-thread / 1-thread seconds (below 1: two threads are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch

from pixelzoo import models
from pixelzoo.evaluation.ais import AISConfig, ais_log_prob, decoder_of
from pixelzoo.utils import threads as pixelzoo_threads


def ais_dcgan_digits():
    """The AIS of ``compare --quick``'s DCGAN, shortened: 50 transitions, 4 chains,
    5 leapfrog steps, on 50 images of 8x8."""
    torch.manual_seed(0)
    model = models.build("dcgan", (1, 8, 8), 17).eval()
    x = torch.randint(0, 17, (50, 1, 8, 8))
    decoder = decoder_of(model)
    cfg = AISConfig(steps=50, chains=4, leapfrog=5)
    return lambda: ais_log_prob(decoder, x, cfg, generator=torch.Generator().manual_seed(0))


def cached(name: str, preset: str, shape, levels: int, n: int = 16):
    torch.manual_seed(0)
    model = models.build(name, shape, levels, preset).eval()
    return lambda: model.sample(n, generator=torch.Generator().manual_seed(0), sampler="cached")


LOOPS = {
    "ais_dcgan_digits": ais_dcgan_digits,
    "cached_pixelcnn_bmnist_cpu": lambda: cached("pixelcnn", "binarized_mnist_cpu", (1, 28, 28), 2),
    "cached_gated_bmnist_cpu": lambda: cached(
        "gated_pixelcnn", "binarized_mnist_cpu", (1, 28, 28), 2
    ),
}


def spin() -> subprocess.Popen:
    """One busy core: a process that computes and never sleeps."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def timed(fn, threads: int) -> float:
    # pixelzoo runs these loops on SMALL_OP_THREADS threads; lifted here, so that
    # torch.set_num_threads decides, to measure what that choice rests on.
    pixelzoo_threads.SMALL_OP_THREADS = threads
    torch.set_num_threads(threads)
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", action="append", choices=list(LOOPS), help="loops to measure")
    p.add_argument(
        "--repeats", type=int, default=2, help="interleaved repeats (the median is kept)"
    )
    args = p.parse_args()
    results = []
    for name in args.only or LOOPS:
        fn = LOOPS[name]()
        timed(fn, 2)  # warm-up
        runs = {(t, load): [] for t in (1, 2) for load in ("idle", "loaded")}
        for _ in range(args.repeats):
            for load in ("idle", "loaded"):
                busy = spin() if load == "loaded" else None
                try:
                    time.sleep(0.2 if busy else 0)
                    for t in (1, 2):
                        runs[(t, load)].append(timed(fn, t))
                finally:
                    if busy:
                        busy.kill()
                        busy.wait()
        med = {k: statistics.median(v) for k, v in runs.items()}
        results.append({
            "loop": name,
            "seconds": {f"{t}_threads_{load}": round(s, 3) for (t, load), s in med.items()},
            "slowdown_under_load": {f"{t}_threads": round(med[(t, "loaded")] / med[(t, "idle")], 2)
                                    for t in (1, 2)},
            "threads_ratio_idle": round(med[(2, "idle")] / med[(1, "idle")], 2),
            "threads_ratio_loaded": round(med[(2, "loaded")] / med[(1, "loaded")], 2),
            "repeats": args.repeats,
        })  # fmt: skip
    print(json.dumps({"benchmark": "threads", "machine": platform.processor() or platform.machine(),
                      "cpus": os.cpu_count(), "torch": torch.__version__, "results": results},
                     indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
