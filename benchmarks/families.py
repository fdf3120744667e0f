"""Training images/s and the time to sample 16 images, for GANs, the VAE and the
autoregressive models side by side ("GANs sample in one pass", measured).

A training step is what the trainer runs: for a GAN one discriminator and one
generator Adam step (the models' own ``discriminator_loss`` / ``generator_loss``),
for the others one Adam step on ``model.loss``. Batches are random images of the
configuration's shape (speed does not depend on their content). Sampling uses each
model's default sampler (cached for the autoregressive ones). Prints one JSON object.

    python benchmarks/families.py                     # all configurations
    python benchmarks/families.py --only dcgan --space bmnist --amp
    # the PixelCNN++ paper's CIFAR-10 model (53.7 M parameters): training images/s
    python benchmarks/families.py --only pixelcnn_pp --space cifar10 --preset cifar10 \
        --batch-size 16 --steps 2 --amp
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from pixelzoo import models
from pixelzoo.models.adversarial import AdversarialModel

SPACES = {  # name: (image shape, levels, preset)
    "bmnist": ((1, 28, 28), 2, "binarized_mnist"),
    "mnist": ((1, 28, 28), 256, "mnist"),
    "cifar10": ((3, 32, 32), 256, "cifar10"),
}
MODELS = {  # model: preset per space (None: the space's own preset)
    "dcgan": {},
    "pggan": {},
    "vae": {},
    "pixelcnn": {"bmnist": "binarized_mnist_cpu", "mnist": None, "cifar10": None},
    "gated_pixelcnn": {"bmnist": "binarized_mnist_cpu", "mnist": None, "cifar10": None},
    "pixelcnn_pp": {"bmnist": "binarized_mnist", "mnist": "mnist", "cifar10": "mnist"},
}
# Autoregressive models are sampled on the small spaces only (a cached CIFAR-10
# PixelCNN++ takes ~1 min per 16 images on this CPU: see benchmarks/sampling.py).
AR_SAMPLE_SPACES = ("bmnist", "mnist")


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def make_step(model, batch: int, device: str, amp: bool):
    """A closure running one training step of ``model`` on a random batch."""
    x = torch.randint(0, model.levels, (batch, *model.image_shape), device=device)
    kind = "cuda" if device.startswith("cuda") else "cpu"

    def autocast():
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=amp)

    if isinstance(model, AdversarialModel):
        opt_g = torch.optim.Adam(model.generator.parameters(), 1e-4)
        opt_d = torch.optim.Adam(model.discriminator.parameters(), 1e-4)

        def step():
            with autocast():
                d_loss, _ = model.discriminator_loss(x)
            d_loss.backward()
            opt_d.step()
            opt_d.zero_grad(set_to_none=True)
            model.discriminator.requires_grad_(False)
            with autocast():
                g_loss, _ = model.generator_loss(batch)
            g_loss.backward()
            model.discriminator.requires_grad_(True)
            opt_g.step()
            opt_g.zero_grad(set_to_none=True)

        return step
    opt = torch.optim.Adam(model.parameters(), 1e-4)

    def step():
        with autocast():
            loss = model.loss(x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def timed(fn, repeats: int, device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(MODELS), help="comma-separated model names")
    p.add_argument("--space", default=",".join(SPACES), help="comma-separated image spaces")
    p.add_argument("--preset", default=None, help="use this preset for every model")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--amp", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results = []
    for space in args.space.split(","):
        shape, levels, space_preset = SPACES[space]
        for name in args.only.split(","):
            preset = args.preset or MODELS[name].get(space, space_preset) or "default"
            torch.manual_seed(0)
            model = models.build(name, shape, levels, preset).to(args.device)
            if hasattr(model, "set_images_seen"):
                model.set_images_seen(10**12)  # a grown Progressive GAN: the full resolution
            model.train()
            step = make_step(model, args.batch_size, args.device, args.amp)
            step()  # warm-up
            seconds = timed(step, args.steps, args.device)
            record = {
                "space": space,
                "model": name,
                "preset": preset,
                "params": sum(p.numel() for p in model.parameters()),
                "train_images_per_s": round(args.batch_size / seconds, 1),
            }
            autoregressive = isinstance(model, models.AutoregressiveModel)
            if not autoregressive or space in AR_SAMPLE_SPACES:
                model.eval()
                g = torch.Generator().manual_seed(0)
                record["sample_16_seconds"] = round(
                    timed(lambda m=model, g=g: m.sample(16, generator=g), 1, args.device), 4
                )
            results.append(record)
            print(json.dumps(record), flush=True)
    print(
        json.dumps(
            {
                "benchmark": "families",
                "batch_size": args.batch_size,
                "amp": args.amp,
                "device": args.device,
                "threads": torch.get_num_threads(),
                "machine": platform.processor() or platform.machine(),
                "torch": torch.__version__,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
