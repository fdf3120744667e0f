"""Missing modes: mode counts with the evaluator classifier, and the birthday-paradox test.

- **Mode count and KL to uniform.** Each sample is given the evaluator's label;
  a mode is covered when at least one sample falls in it, and the KL divergence
  ``KL(q || uniform)`` of the samples' label histogram ``q`` measures how unevenly
  they are spread (0 for a perfectly even spread). On data with C channels and an
  evaluator of one-channel images, each channel is classified on its own and the
  mode is the tuple of digits: for stacked MNIST (3 MNIST digits as channels;
  Metz et al. 2017, Srivastava et al. 2017) that gives 10^3 = 1000 modes.
- **Birthday paradox** (Arora & Zhang 2017): if a set of s samples holds a
  near-duplicate pair with good probability, the distribution's support is about
  s^2. :func:`nearest_pairs` finds the closest pairs among the samples (Euclidean
  distance in [0, 1] intensities) for a person to judge whether they are
  duplicates; :func:`save_pairs` draws them.
"""

from __future__ import annotations

import math

import torch

from pixelzoo.data.base import check_image_set
from pixelzoo.data.images import save_grid
from pixelzoo.errors import InputError


def mode_statistics(labels: torch.Tensor, num_modes: int) -> dict:
    """Modes covered by ``labels`` (values in ``0..num_modes-1``) and KL(histogram || uniform) in nats."""
    labels = torch.as_tensor(labels).long()
    if len(labels) == 0:
        raise InputError("mode statistics need at least one sample")
    if int(labels.min()) < 0 or int(labels.max()) >= num_modes:
        raise InputError(f"mode labels must lie in 0..{num_modes - 1}")
    q = torch.bincount(labels, minlength=num_modes).double() / len(labels)
    seen = q > 0
    kl = float((q[seen] * (q[seen] * num_modes).log()).sum())
    return {
        "modes": int(seen.sum()),
        "num_modes": num_modes,
        "kl_to_uniform": kl,
        "samples": len(labels),
    }


def mode_labels(classifier, x: torch.Tensor, levels: int) -> tuple[torch.Tensor, int]:
    """Each image's mode and the number of modes.

    With an evaluator of C-channel images a mode is a class. With an evaluator of
    one-channel images and C > 1 channels, each channel is classified and the mode
    is the C-digit number ``d_1 d_2 ... d_C`` in base ``classes``.
    """
    check_image_set(x, "samples")
    spec = classifier.spec
    _, c, h, w = x.shape
    if (h, w) != tuple(spec.image_shape[1:]):
        raise InputError(
            f"the evaluator classifies {spec.image_shape[1]}x{spec.image_shape[2]} images, got {h}x{w}"
        )
    if c == spec.image_shape[0]:
        return classifier.predict(x, levels), spec.classes
    if spec.image_shape[0] != 1:
        raise InputError(
            f"the evaluator classifies {spec.image_shape[0]}-channel images, got {c} channels"
        )
    digits = classifier.predict(x.reshape(-1, 1, h, w), levels).view(-1, c)
    place = spec.classes ** torch.arange(c - 1, -1, -1)
    return (digits * place).sum(1), spec.classes**c


def count_modes(classifier, x: torch.Tensor, levels: int) -> dict:
    """:func:`mode_statistics` of the samples ``x`` as labelled by the evaluator."""
    labels, num_modes = mode_labels(classifier, x, levels)
    return mode_statistics(labels, num_modes)


def nearest_pairs(x: torch.Tensor, levels: int, k: int = 8) -> list[tuple[int, int, float]]:
    """The ``k`` closest pairs ``(i, j, distance)`` among the images ``x``, closest first.

    Distances are Euclidean over all sub-pixels, with intensities scaled to [0, 1],
    so 0 is an exact duplicate.
    """
    check_image_set(x, "samples")
    if len(x) < 2:
        raise InputError("the duplicate test needs at least 2 samples")
    flat = x.flatten(1).double() / (levels - 1)
    d = torch.cdist(flat, flat)
    d.fill_diagonal_(math.inf)
    i, j = torch.triu_indices(len(x), len(x), offset=1)
    pair_d = d[i, j]
    order = pair_d.argsort()[:k]
    return [(int(i[o]), int(j[o]), float(pair_d[o])) for o in order]


def save_pairs(x: torch.Tensor, pairs, levels: int, path) -> None:
    """A PNG with the pairs as columns: first images on the top row, their partners below."""
    top = torch.stack([x[i] for i, _, _ in pairs])
    bottom = torch.stack([x[j] for _, j, _ in pairs])
    save_grid(torch.cat([top, bottom]), levels, path, nrow=len(pairs))
