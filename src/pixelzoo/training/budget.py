"""The budget line, and validation's share: what a run's first steps say about its budget.

After a few steps the trainer knows its throughput, so it says, in one line, how
many images a second it trains, how much of the data the budget covers, and,
when a ``--minutes`` budget covers less than one epoch, which other preset of the
same model would fit. That preset is chosen by counted arithmetic: the FLOPs of
one image's training loss in each preset (``FlopCounterMode``, forward only; the
backward pass scales with it), scaled from this run's measured throughput; the
estimate is labelled as such.

The same measurement sizes validation. A run of ``W`` seconds that may spend a
share ``s`` of them validating (``valid_share``) expects ``N`` validations (one
per ``valid_every`` epochs over the steps ``(1 - s) W`` allows, the last at the
end); each may then take ``s W / N`` seconds, and the validation subset is the
largest that one timed batch says fits ``MARGIN`` of that (a validation of at
most ``FLOOR_SECONDS`` is never cut or skipped). A steps or epochs
budget is the same with ``W`` the projected training time over ``1 - s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from pixelzoo import models
from pixelzoo.errors import ConfigError

STEPS = 5  # steps measured after the first (which pays for warm-up)
# The validation subset is sized to this part of its allowance: the rest is room for
# the noise of a shared machine and for a full batch costing more per image than the
# small timed one (a VAE's IWAE-64 on 147 images: 1.35x the timed 32's cost per image).
MARGIN = 0.6
PROBE_IMAGES = 32  # images per process in the timed batch (and the smallest subset)
# A validation this short is never cut or skipped: nobody waits for it, and the small
# runs of tests and quick comparisons then validate the same images whatever the timing.
FLOOR_SECONDS = 2.0
TEST_ONLY_PRESETS = ("tiny",)  # the property tests' models: never a suggestion


@dataclass
class Budget:
    images_per_s: float
    seconds: float | None  # training-step seconds the budget leaves (None: a steps/epochs budget)
    epochs: float  # epochs of the training set the budget covers
    line: str
    suggestion: str | None = None

    def record(self, step: int) -> dict:
        """The metrics.jsonl record of this line."""
        return {"split": "budget", "step": step, "images_per_s": self.images_per_s,
                "epochs_in_budget": self.epochs, "suggested_preset": self.suggestion}  # fmt: skip


def image_flops(model) -> float:
    """FLOPs of the training loss per image, forward only (convolutions and matrix
    products; a GAN: a fake through its generator and discriminator)."""
    x = torch.zeros(2, *model.image_shape, dtype=torch.long)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        if hasattr(model, "discriminator_loss"):  # a fake through G and D (no penalty term)
            model.discriminate(model.to_critic(model.generate(model.latent(len(x)))))
        else:
            model.loss((x, model.sample_cond(len(x))) if model.cond_kind == "class" else x)
    return counter.get_total_flops() / len(x)


def smaller_preset(name: str, preset: str, model, images_per_s: float, seconds: float, n: int):
    """``(preset, estimated epochs)``: the largest other preset of ``name`` whose estimated
    throughput covers at least one epoch of ``n`` images in ``seconds``, else the cheapest
    one; None when no other preset is cheaper than this one."""
    mine = image_flops(model)
    options = []
    for other in models.get(name).presets:
        if other in (preset, *TEST_ONLY_PRESETS):
            continue
        extra = {"num_classes": model.num_classes} if model.cond_kind == "class" else {}
        try:
            candidate = models.build(name, model.image_shape, model.levels, other, **extra)
        except ConfigError:
            continue  # a preset that does not fit these images
        flops = image_flops(candidate)
        if flops < mine:
            options.append((flops, other))
    if not options:
        return None
    epochs = {o: images_per_s * mine / f * seconds / n for f, o in options}
    fitting = [(f, o) for f, o in options if epochs[o] >= 1.0]
    _, best = max(fitting) if fitting else min(options)
    return best, epochs[best]


def budget_line(cfg, model, n_train: int, images_per_s: float, seconds: float | None,
                steps_left: int | None, validation: str = "",
                precision: str = "") -> Budget:  # fmt: skip
    """The budget of a run (``cfg``) whose measured throughput is ``images_per_s``.

    ``seconds``: the training-step seconds its ``--minutes`` leave once validation is
    set aside (None: no time budget); ``validation``: how validation was sized, said
    at the end of the line; ``precision``: how the steps compute (after the images/s).
    """
    by_steps = None if steps_left is None else steps_left * cfg.batch_size / n_train
    by_time = None if seconds is None else seconds * images_per_s / n_train
    epochs = min(e for e in (by_steps, by_time) if e is not None)
    if by_time is not None and (by_steps is None or by_time <= by_steps):
        what = f"the {cfg.minutes:g}-minute budget"
    else:
        what = f"the {steps_left:,} steps left (about {steps_left * cfg.batch_size / images_per_s / 60:.1f} min)"
    how = f" ({precision})" if precision else ""
    line = (f"budget: {images_per_s:,.0f} images/s{how} over the first steps; {what} covers "
            f"{epochs:.2f} epochs of the {n_train:,} training images")  # fmt: skip
    suggestion = None
    if by_time is not None and epochs < 1.0 and cfg.preset:
        found = smaller_preset(cfg.model, cfg.preset, model, images_per_s, seconds, n_train)
        if found is None:
            line += f"; no preset of {cfg.model} is smaller than {cfg.preset!r}"
        else:
            suggestion, est = found
            line += (f"; less than one epoch: preset {suggestion!r} would cover about {est:.1f} "
                     f"(estimated from its FLOPs per image)")  # fmt: skip
    if validation:
        line += f"; {validation}"
    return Budget(images_per_s, seconds, epochs, line, suggestion)


def validation_allowance(share: float, step_seconds: float, period: int,
                         total_steps: int | None, wall_seconds: float | None,
                         spent: float = 0.0) -> tuple[float, int]:  # fmt: skip
    """``(seconds one validation may take, validations expected)`` for a run whose steps
    take ``step_seconds`` and that validates every ``period`` steps and at its end.

    ``wall_seconds`` is a ``--minutes`` budget (None: the run ends at ``total_steps``);
    ``spent``: validation seconds already used (the timed batch).
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), not {share}")
    if wall_seconds is not None:
        steps = (1 - share) * wall_seconds / max(step_seconds, 1e-9)
        if total_steps is not None:
            steps = min(steps, total_steps)
        total = share * wall_seconds
    else:
        steps = total_steps
        total = share / (1 - share) * total_steps * step_seconds
    validations = max(1, math.ceil(steps / period))
    return max(0.0, total - spent) / validations, validations


def subset_size(allowance: float, seconds_per_image: float, available: int, minimum: int) -> int:
    """Images one validation can score in ``MARGIN`` of ``allowance`` seconds (or in
    ``FLOOR_SECONDS``, if more), at least ``minimum`` (one batch) and at most ``available``."""
    seconds = max(MARGIN * allowance, FLOOR_SECONDS)
    fits = math.floor(seconds / max(seconds_per_image, 1e-12))
    return min(available, max(minimum, fits))


def validation_fits(share: float, spent: float, cost: float, projected_wall: float) -> bool:
    """Whether a validation between epochs keeps the run within its share, with room left
    for the one at the end: ``spent + 2 cost <= share x projected_wall`` (or it costs at
    most ``FLOOR_SECONDS``)."""
    return share >= 1 or cost <= FLOOR_SECONDS or spent + 2 * cost <= share * projected_wall
