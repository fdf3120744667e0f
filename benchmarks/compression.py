"""Lossless compression: pixelzoo's code from a trained model against PNG, WebP and JPEG-XL.

For each run (a run folder, a pretrained folder or ``pretrained:NAME``): the first
``--images`` test images of its dataset, compressed into one pixelzoo file
(``pixelzoo.codec``), decoded again and compared pixel for pixel, with the encode and
decode speed (images/s; an autoregressive model's is the stepper's: one network step per
sub-pixel or pixel); the model's NLL in bits/dim over the same images (the parallel
forward pass, with its 95% interval over the images; a VAE's is its IWAE bound, and its
-ELBO is given too, which its bits-back file approaches); and the baselines on the same
images, one file per image and tiled into one image (``pixelzoo.evaluation.lossless``).
Prints one JSON object.

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
from pixelzoo.codec import bitsback
from pixelzoo.evaluation import lossless
from pixelzoo.evaluation.nll import nll_values
from pixelzoo.evaluation.uncertainty import mean_estimate
from pixelzoo.runs.pretrained import open_run
from pixelzoo.utils.io import atomic_write_json


def _bpd(est, to_bpd: float) -> dict:
    return {"value": est.value * to_bpd, "low": est.low * to_bpd, "high": est.high * to_bpd,
            "n": est.n}  # fmt: skip


def measure_run(
    path: str, data_dir: str | None, images: int, batch: int | None, checkpoint: str
) -> dict:
    run = open_run(path)
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
    extra = {}
    if bitsback.codes_with_bits_back(model):
        g = torch.Generator().manual_seed(0)
        elbo = torch.cat([bitsback.expected_bits(model, x[k : k + 100], generator=g)
                          for k in range(0, n, 100)])  # fmt: skip
        extra["neg_elbo_bits_per_dim"] = _bpd(mean_estimate(elbo.tolist()), 1.0 / model.dims)
    return {
        "run": str(path),
        "model": model.registry_name,
        "dataset": split.name,
        "images": n,
        "shape": list(model.image_shape),
        "levels": model.levels,
        "nll_bits_per_dim": _bpd(est, to_bpd),
        "nll_kind": model.nats_kind,
        **extra,
        "pixelzoo": {
            "bits_per_dim": encoded.bits_per_dim,
            "bytes": len(encoded.data),
            "header_bytes": codec.HEADER.size,
            "ideal_bits_per_dim": encoded.ideal_bits_per_dim,
            "ideal": encoded.ideal_label,
            "encode_images_per_s": n / (t1 - t0),
            "decode_images_per_s": n / (t2 - t1),
            "batch": batch or (bitsback.BATCH if extra else codec.BATCH),
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
    p.add_argument("--batch", type=int, default=None,
                   help="images walked through the stepper at once (a VAE: a bits-back link); "
                   "default: the codec's")  # fmt: skip
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
    print(json.dumps(out, indent=1))
    if args.out:  # JSON has no NaN: a figure that is not a number is written as null
        atomic_write_json(
            Path(args.out), json.loads(json.dumps(out), parse_constant=lambda _: None)
        )


if __name__ == "__main__":
    main()
