"""Exact negative log-likelihood of a dataset split, in nats per image and bits/dim.

Every image is counted exactly once: the sum of per-image NLLs over the whole
split divided by the number of images (not a mean of per-batch means, which is
wrong when the last batch is smaller).
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from pixelzoo.errors import InputError


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Nats per image -> bits per sub-pixel."""
    return nats_per_image / (dims * math.log(2))


@torch.no_grad()
def nll_sum(
    model,
    dataset,
    indices: torch.Tensor,
    batch_size: int = 256,
    progress: bool = False,
) -> float:
    """Sum of -log p(x) in nats over ``dataset[indices]`` (float64 accumulation).

    A class-conditional model is given each image's label: the result is then
    -log p(x | y).
    """
    device = model.device
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        chunks = indices.split(batch_size)
        for idx in tqdm(chunks, desc="evaluating", unit="batch", disable=not progress, leave=False):
            x, y = dataset.get_batch(idx)
            cond = None
            if getattr(model, "cond_kind", None) == "class":
                if y is None:
                    raise InputError(
                        f"the model is class-conditional but dataset {dataset.name!r} has no labels"
                    )
                cond = y.to(device)
            total += float(-model.log_prob(x.to(device), cond).double().sum())
    finally:
        model.train(was_training)
    return total


def evaluate_nll(model, dataset, batch_size: int = 256, progress: bool = False) -> dict:
    """``{"nats", "bits_per_dim", "split", "images", "nats_kind", "conditioned_on"}`` for ``dataset``.

    ``nats_kind`` says what the number is: "exact" (autoregressive models) or
    "bound" (a VAE's IWAE bound, so an upper bound on the NLL); ``conditioned_on``
    what the likelihood is conditioned on (None: it is p(x)).
    """
    n = len(dataset)
    nats = nll_sum(model, dataset, torch.arange(n), batch_size, progress) / n
    return {
        "nats": nats,
        "bits_per_dim": bits_per_dim(nats, model.dims),
        "split": dataset.split,
        "images": n,
        "nats_kind": getattr(model, "nats_kind", "exact"),
        "conditioned_on": getattr(model, "conditioned_on", None),
    }


def describe_nll(result: dict, model) -> str:
    """The result of :func:`evaluate_nll` as one line a person reads."""
    given = f" given {result['conditioned_on']}" if result.get("conditioned_on") else ""
    caveat = getattr(model, "nll_caveat", None)
    return (
        f"{result['split']}: {result['nats']:.4f} nats/image, {result['bits_per_dim']:.5f} bits/dim "
        f"over {result['images']} images{given}{f' ({caveat})' if caveat else ''}"
    )
