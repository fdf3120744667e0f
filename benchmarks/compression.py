"""Lossless compression: pixelzoo's code from a trained model against PNG, WebP and JPEG-XL.

For each run: the first ``--images`` test images of its dataset, compressed into one
pixelzoo file (``pixelzoo.codec``), decoded again and compared pixel for pixel, with the
encode and decode speed (images/s, the stepper's: one network step per sub-pixel or
pixel); the model's NLL in bits/dim over the same images (the parallel forward pass, with
its 95% interval over the images); and the baselines on the same images, one file per
image and tiled into one image (``pixelzoo.evaluation.lossless``). Prints one JSON object.

    python benchmarks/compression.py --run /work/bench/runs/pixelcnn --images 1000 \\
        --data-dir ../shared/data/binarized_mnist
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import torch

from pixelzoo import codec
from pixelzoo.evaluation import lossless
from pixelzoo.evaluation.nll import nll_values
from pixelzoo.evaluation.uncertainty import mean_estimate
from pixelzoo.runs import Run
from pixelzoo.utils.io import atomic_write_json


def measure_run(path: str, data_dir: str | None, images: int, batch: int, checkpoint: str) -> dict:
    run = Run(path)
    model = run.load_model(checkpoint)
    split = run.load_split("test", data_dir)
    n = min(images, len(split))
    x, labels = split.get_batch(torch.arange(n), torch.Generator().manual_seed(0))
    labels = labels if model.cond_kind == "class" else None
    t0 = time.perf_counter()
    encoded = codec.encode(model, x, labels, batch=batch, progress=True)
    t1 = time.perf_counter()
    y, decoded_labels = codec.decode(model, encoded.data, progress=True)
    t2 = time.perf_counter()
    assert torch.equal(y, x), "the pixelzoo file did not decode to the same pixels"
    est = mean_estimate(nll_values(model, split, torch.arange(n), batch_size=100))
    to_bpd = 1.0 / (model.dims * math.log(2.0))
    return {
        "run": str(path),
        "model": model.registry_name,
        "dataset": split.name,
        "images": n,
        "shape": list(model.image_shape),
        "levels": model.levels,
        "nll_bits_per_dim": {
            "value": est.value * to_bpd,
            "low": est.low * to_bpd,
            "high": est.high * to_bpd,
            "n": est.n,
        },  # fmt: skip
        "pixelzoo": {
            "bits_per_dim": encoded.bits_per_dim,
            "bytes": len(encoded.data),
            "header_bytes": codec.HEADER.size,
            "ideal_bits_per_dim": encoded.ideal_bits_per_dim,
            "encode_images_per_s": n / (t1 - t0),
            "decode_images_per_s": n / (t2 - t1),
            "batch": batch,
        },
        "baselines": lossless.measure(x, model.levels),
        "raw_bits_per_dim": math.log2(model.levels),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="a run folder (repeatable)")
    p.add_argument("--data-dir", action="append", default=None,
                   help="each run's dataset folder (repeatable, in --run's order)")  # fmt: skip
    p.add_argument("--images", type=int, default=1000, help="first N test images")
    p.add_argument(
        "--batch", type=int, default=250, help="images walked through the stepper at once"
    )
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--out", default=None, help="also write the JSON here")
    args = p.parse_args()
    dirs = args.data_dir or [None] * len(args.run)
    results = [measure_run(r, d, args.images, args.batch, args.checkpoint)
               for r, d in zip(args.run, dirs, strict=True)]  # fmt: skip
    out = {
        "benchmark": "compression",
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)",
        "torch": torch.__version__,
        "results": results,
    }
    if args.out:
        atomic_write_json(Path(args.out), out)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
