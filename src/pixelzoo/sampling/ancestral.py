"""Ancestral sampling and completion, with a naive or a cached network evaluation.

Pixels are drawn in raster order. For a likelihood that models sub-pixels one
at a time (Bernoulli, categorical) the network is evaluated once per colour
channel R -> G -> B and channel c is drawn from its parameters; for one that
models the whole pixel (the logistic mixture) it is evaluated once per pixel.
Each draw inverts a CDF at uniforms from ``generator``, a fixed number per pixel,
drawn on the generator's device (the CPU by default) and moved to the model, so
the same seed gives the same images on any device whose arithmetic agrees.

How the network is evaluated is a *stepper*'s business
(:mod:`pixelzoo.sampling.steppers`): the naive one runs the whole network on
the partial image for every draw (the reference, correct for any model); a
model's cached stepper (``model.cached_stepper``) computes each layer's
activations once, as they become final, and gives the same parameters (to
rounding), so the same images.
"""

from __future__ import annotations

import contextlib

import torch
from torch.nn.utils import parametrize
from tqdm.auto import tqdm

from pixelzoo.errors import InputError
from pixelzoo.sampling.steppers import NaiveStepper
from pixelzoo.utils.threads import at_most

SAMPLERS = ("auto", "cached", "naive")


def _uniform(shape, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else "cpu"
    return torch.rand(shape, generator=generator, device=device)


def make_stepper(model, sampler: str, x: torch.Tensor, cond):
    """The stepper for ``sampler`` (``"auto"``: cached where the model has one)."""
    if sampler not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}")
    if sampler == "naive":
        return NaiveStepper(model, x, cond)
    stepper = model.cached_stepper(x, cond)
    if stepper is None:
        if sampler == "cached":
            given = " without codes" if model.has_cached_sampler() else ""
            raise InputError(
                f"{model.registry_name} has no cached sampler{given} (`pixelzoo models` lists "
                "the models that have one); use sampler='naive'"
            )
        return NaiveStepper(model, x, cond)
    return stepper


@torch.no_grad()
def fill(
    model,
    x: torch.Tensor,
    known: torch.Tensor | None,
    cond=None,
    generator: torch.Generator | None = None,
    progress: bool = False,
    sampler: str = "auto",
) -> torch.Tensor:
    """Sample every pixel of ``x [n, C, H, W]`` not marked in ``known [H, W]``, in raster order."""
    n, channels, height, width = x.shape
    model.check_cond(cond, n)
    device = model.device
    x = x.to(device).clone()
    if isinstance(cond, torch.Tensor):
        cond = cond.to(device)
    likelihood = model.likelihood
    todo = height * width - (int(known.sum()) if known is not None else 0)
    was_training = model.training
    model.eval()
    try:
        # Weight-normalised layers compute their weight once, not at every step.
        with (
            parametrize.cached(),
            tqdm(total=todo, desc="sampling", unit="px", disable=not progress, leave=False) as bar,
            contextlib.ExitStack() as stack,
        ):
            stepper = make_stepper(model, sampler, x, cond)
            if not isinstance(stepper, NaiveStepper):  # small operations: one thread
                stack.enter_context(at_most())  # (see pixelzoo/utils/threads.py)
            for i in range(height):
                stepper.begin_row(i)
                for j in range(width):
                    if known is not None and bool(known[i, j]):
                        stepper.step(x, i, j, need=False)
                    elif likelihood.joint:
                        params = stepper.step(x, i, j, need=True)  # (n, P)
                        u = _uniform((n, likelihood.uniforms_per_pixel), generator).to(device)
                        x[:, :, i, j] = likelihood.sample_pixel(params, u)
                        bar.update()
                    else:
                        for c in range(channels):
                            params = stepper.step(x, i, j, need=True)
                            u = _uniform(n, generator).to(device)
                            x[:, c, i, j] = likelihood.sample_subpixel(params, c, u)
                        bar.update()
                    stepper.commit(x, i, j)
    finally:
        model.train(was_training)
    return x


# Images drawn at once by sample(): a cached stepper keeps every layer's activations
# for each image (PixelCNN++ at 28x28: about 5 MB an image), so thousands at once
# would not fit in memory.
SAMPLE_BATCH = 512


def sample(
    model,
    n: int,
    cond=None,
    generator: torch.Generator | None = None,
    *,
    progress: bool = False,
    sampler: str = "auto",
    batch_size: int = SAMPLE_BATCH,
) -> torch.Tensor:
    """``n`` new images ``[n, C, H, W]`` (int64), drawn ``batch_size`` at a time.

    The batches are drawn one after the other from the same ``generator``, so for
    any ``n`` the first ``batch_size`` images are those of ``sample(batch_size)``.
    """
    if n < 1:
        raise InputError(f"number of samples must be at least 1, got {n}")
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    model.check_cond(cond, n)
    starts = range(0, n, batch_size)
    out = []
    for k in tqdm(starts, desc="sampling batches", disable=not progress or len(starts) == 1):
        m = min(batch_size, n - k)
        part = None if cond is None else cond[k : k + m]
        x = torch.zeros(m, *model.image_shape, dtype=torch.long)
        out.append(fill(model, x, None, part, generator, progress and len(starts) == 1, sampler))
    return torch.cat(out)


def complete(
    model,
    x: torch.Tensor,
    rows: int,
    cond=None,
    generator: torch.Generator | None = None,
    *,
    progress: bool = False,
    sampler: str = "auto",
) -> torch.Tensor:
    """Keep rows ``0..rows-1`` of images ``x [n, C, H, W]`` and sample the rest."""
    model.check_images(x)
    height, width = model.image_shape[1:]
    if not 0 <= rows <= height:
        raise InputError(f"rows to keep must be in 0..{height}, got {rows}")
    known = torch.zeros(height, width, dtype=torch.bool)
    known[:rows] = True
    given = x.clone()
    given[:, :, rows:] = 0
    return fill(model, given, known, cond, generator, progress, sampler)
