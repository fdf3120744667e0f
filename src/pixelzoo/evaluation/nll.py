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
from pixelzoo.evaluation.uncertainty import Z95, mean_estimate


def bits_per_dim(nats_per_image: float, dims: int) -> float:
    """Nats per image -> bits per sub-pixel."""
    return nats_per_image / (dims * math.log(2))


@torch.no_grad()
def nll_values(
    model,
    dataset,
    indices: torch.Tensor,
    batch_size: int = 256,
    progress: bool = False,
) -> torch.Tensor:
    """-log p(x) in nats of each image ``dataset[indices]``, ``[len(indices)]`` float64.

    A class-conditional model is given each image's label: the values are then
    -log p(x | y).
    """
    device = model.device
    was_training = model.training
    model.eval()
    out = []
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
            out.append(-model.log_prob(x.to(device), cond).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def nll_sum(
    model, dataset, indices: torch.Tensor, batch_size: int = 256, progress: bool = False
) -> float:
    """Sum of -log p(x) in nats over ``dataset[indices]`` (float64 accumulation)."""
    return float(nll_values(model, dataset, indices, batch_size, progress).sum())


def evaluate_nll(
    model, dataset, batch_size: int = 256, progress: bool = False, *, per_image: bool = False
) -> dict:
    """The NLL of ``dataset`` in nats/image and bits/dim, with its 95% interval.

    Returns ``{"nats", "nats_se", "nats_ci", "bits_per_dim", "bits_per_dim_ci", "split",
    "images", "nats_kind", "conditioned_on"}`` (and ``"per_image"``, the ``[N]`` values,
    when asked). The interval is ``mean +- 1.96 standard errors`` over the test images:
    how much the figure would move on another test set of the same size.
    ``nats_kind`` says what the number is: "exact" (autoregressive models) or "bound"
    (a VAE's IWAE bound, so an upper bound on the NLL); ``conditioned_on`` what the
    likelihood is conditioned on (None: it is p(x)).
    """
    n = len(dataset)
    values = nll_values(model, dataset, torch.arange(n), batch_size, progress)
    est = mean_estimate(values)
    out = {
        "nats": est.value,
        "nats_se": (est.high - est.value) / Z95,
        "nats_ci": [est.low, est.high],
        "bits_per_dim": bits_per_dim(est.value, model.dims),
        "bits_per_dim_ci": [bits_per_dim(est.low, model.dims), bits_per_dim(est.high, model.dims)],
        "split": dataset.split,
        "images": n,
        "nats_kind": getattr(model, "nats_kind", "exact"),
        "conditioned_on": getattr(model, "conditioned_on", None),
    }
    if per_image:
        out["per_image"] = values
    return out


def describe_nll(result: dict, model) -> str:
    """The result of :func:`evaluate_nll` as one line a person reads."""
    given = f" given {result['conditioned_on']}" if result.get("conditioned_on") else ""
    caveat = getattr(model, "nll_caveat", None)
    half = Z95 * result["nats_se"]
    return (
        f"{result['split']}: {result['nats']:.4f} +- {half:.4f} nats/image (95% interval over "
        f"the images), {result['bits_per_dim']:.5f} bits/dim over {result['images']} "
        f"images{given}{f' ({caveat})' if caveat else ''}"
    )
