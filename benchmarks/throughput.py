"""Training throughput (images/s) and naive sampling time of autoregressive models.

Measures, for each configuration, full optimizer steps (forward, backward, Adam)
on binarized-MNIST-shaped batches after warm-up, and the time to draw 16 images
of 28x28 with the naive sampler. Prints one JSON object.

    python benchmarks/throughput.py [--device cuda] [--amp] [--configs row_lstm,diagonal_bilstm]
    # The Gated PixelCNN of issue 4: 10 layers x 128 maps, batch 256, in chunks of 32
    python benchmarks/throughput.py --configs gated_10x128 --batch-sizes 256 --micro-batch 32 --amp
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from pixelzoo import models

CONFIGS = {
    "binarized_mnist_preset": dict(model="pixelcnn", preset="binarized_mnist"),
    "binarized_mnist_cpu_preset": dict(model="pixelcnn", preset="binarized_mnist_cpu"),
    "8_blocks_64_channels": dict(
        model="pixelcnn", preset="binarized_mnist", blocks=8, hidden=32, out_hidden=64
    ),
    # PixelRNN §5: 7 layers, h = 16 (the paper's binarized MNIST models).
    "row_lstm": dict(model="row_lstm", preset="binarized_mnist"),
    "diagonal_bilstm": dict(model="diagonal_bilstm", preset="binarized_mnist"),
    # pytorch-generative's Gated PixelCNN size: 10 gated layers (after the first) x 128 maps.
    "gated_10x128": dict(model="gated_pixelcnn", preset="binarized_mnist"),
    "gated_cpu": dict(model="gated_pixelcnn", preset="binarized_mnist_cpu"),
}
# "64 channels" = the 2h feature maps the residual stream carries (h = 32).
# binarized_mnist_cpu is also the "15-block, 32-channel PixelCNN" (h = 16).


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def train_images_per_s(
    model, batch: int, device: str, amp: bool, steps: int, micro_batch: int | None = None
) -> float:
    """Full Adam steps of ``batch`` images, accumulated in chunks of ``micro_batch`` if given
    (the trainer's ``micro_batch``: the same step, gradients summed chunk by chunk)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = (torch.rand(batch, *model.image_shape) < 0.13).long().to(device)
    dtype = "cuda" if device.startswith("cuda") else "cpu"
    chunks = x.split(micro_batch or batch)

    def step():
        for chunk in chunks:
            with torch.autocast(dtype, dtype=torch.bfloat16, enabled=amp):
                loss = model.loss(chunk) * (len(chunk) / batch)
            loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return batch * steps / (time.perf_counter() - t0)


def naive_sampling_seconds(model, n: int, device: str) -> float:
    g = torch.Generator().manual_seed(0)
    _sync(device)
    t0 = time.perf_counter()
    model.sample(n, generator=g)
    _sync(device)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--batch-sizes", default="64,256")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--micro-batch", type=int, default=None, help="accumulate in chunks")
    p.add_argument("--no-sampling", action="store_true")
    p.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated names")
    args = p.parse_args()
    unknown = set(args.configs.split(",")) - set(CONFIGS)
    if unknown:
        p.error(f"unknown configs {sorted(unknown)}; valid: {', '.join(CONFIGS)}")
    results = []
    for name in args.configs.split(","):
        kw = dict(CONFIGS[name])
        model_name = kw.pop("model")
        torch.manual_seed(0)
        model = models.build(model_name, (1, 28, 28), 2, **kw).to(args.device)
        entry = {
            "config": name,
            "model": model_name,
            "model_config": model.spec()["config"],
            "parameters": sum(p.numel() for p in model.parameters()),
        }
        for b in map(int, args.batch_sizes.split(",")):
            entry[f"train_images_per_s_batch{b}"] = round(
                train_images_per_s(model, b, args.device, args.amp, args.steps, args.micro_batch),
                1,
            )
        if not args.no_sampling:
            entry["naive_sample_16x28x28_seconds"] = round(
                naive_sampling_seconds(model, 16, args.device), 2
            )
        results.append(entry)
    print(
        json.dumps(
            {
                "benchmark": "throughput",
                "device": args.device,
                "device_name": torch.cuda.get_device_name()
                if args.device.startswith("cuda")
                else platform.processor(),
                "threads": torch.get_num_threads(),
                "amp_bf16": args.amp,
                "micro_batch": args.micro_batch,
                "torch": torch.__version__,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
