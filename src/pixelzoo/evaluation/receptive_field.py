"""Receptive fields of autoregressive models, measured by gradients.

The receptive field of pixel (i, j) is the set of input pixels its output
distribution depends on. It is measured, not derived: the gradient of a random
projection of the network's outputs at (i, j) with respect to the (float) input
image, in float64 so that long recurrent paths do not underflow. A pixel before
(i, j) with an exactly zero gradient is in the model's *blind spot* (PixelCNN's
stacked masked convolutions miss a wedge above-right, van den Oord et al. 2016b
§2.2); a non-zero gradient at (i, j) or after it would be a causality bug.
"""

from __future__ import annotations

import copy
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pixelzoo import models
from pixelzoo.errors import InputError
from pixelzoo.runs import Run
from pixelzoo.utils.io import atomic_write_bytes


@dataclass
class ReceptiveField:
    """Gradient magnitudes of one pixel's outputs with respect to every input pixel.

    Attributes:
        grad: ``[H, W]`` float64, |gradient| summed over input channels.
        pixel: the (row, column) whose outputs were differentiated.
    """

    grad: torch.Tensor
    pixel: tuple[int, int]

    @property
    def seen(self) -> torch.Tensor:
        """``[H, W]`` bool: input pixels the outputs at ``pixel`` depend on."""
        return self.grad != 0

    @property
    def past(self) -> torch.Tensor:
        """``[H, W]`` bool: pixels strictly before ``pixel`` in raster order."""
        h, w = self.grad.shape
        i, j = self.pixel
        index = torch.arange(h * w).view(h, w)
        return index < i * w + j

    @property
    def blind_spot(self) -> int:
        """Number of past pixels the outputs do not depend on."""
        return int((self.past & ~self.seen).sum())

    def summary(self) -> dict:
        """The counts as JSON: the pixel, its blind spot, the past pixels, future pixels seen."""
        return {
            "pixel": list(self.pixel),
            "blind_spot_pixels": self.blind_spot,
            "past_pixels": int(self.past.sum()),
            "future_pixels_seen": self.future_seen,
        }

    @property
    def future_seen(self) -> int:
        """Number of pixels at or after ``pixel`` that the outputs depend on (0 if causal).

        The pixel itself counts only for grey images: in colour, G and B rightly
        see the earlier channels of their own pixel, so it is left out there.
        """
        return int((~self.past & self.seen).sum())


def receptive_field(
    model, pixel: tuple[int, int] | None = None, *, seed: int = 0
) -> ReceptiveField:
    """Measure the receptive field of ``pixel`` (default: the image centre) in ``model``.

    The model is copied to float64 on the CPU; the input is a random image of
    the model's shape drawn with ``seed`` (gradients are exact zeros off the
    receptive field whatever the input).
    """
    c, h, w = model.image_shape
    i, j = pixel if pixel is not None else (h // 2, w // 2)
    if not (0 <= i < h and 0 <= j < w):
        raise InputError(f"pixel {(i, j)} is outside the {h}x{w} image")
    if getattr(model, "conditional", False):
        raise InputError("receptive fields are measured for unconditional models only")
    net = copy.deepcopy(model).to("cpu", torch.float64).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, model.levels, (1, c, h, w), generator=g)
    u = net.embed(x).to(torch.float64).requires_grad_(True)
    params = net.network(u)[0, :, i, j]
    direction = torch.randn(params.shape, generator=g, dtype=torch.float64)
    (grad,) = torch.autograd.grad((params * direction).sum(), u)
    rf = ReceptiveField(grad[0].abs().sum(0), (i, j))
    if c > 1:  # own-pixel channel dependencies are allowed in colour (R -> G -> B)
        rf.grad[i, j] = 0.0
    return rf


def receptive_fields(
    items,
    *,
    preset: str = "default",
    shape: tuple[int, int, int] = (1, 28, 28),
    levels: int = 2,
    pixel: tuple[int, int] | None = None,
    checkpoint: str = "best",
    seed: int = 0,
) -> dict[str, ReceptiveField]:
    """Receptive fields of several models: each item a model name (fresh weights at
    ``preset`` for images ``shape`` with ``levels`` values: the architecture's field) or
    a run folder (its trained weights). Keyed by the name, or the run folder's name."""
    fields = {}
    for item in items:
        if Path(item).is_dir():
            run = Run(item)
            model, label = run.load_model(checkpoint), run.label
        else:
            torch.manual_seed(seed)
            model, label = models.build(item, shape, levels, preset), str(item)
        fields[label] = receptive_field(model, pixel, seed=seed)
    return fields


def plot_receptive_fields(fields: dict[str, ReceptiveField], path) -> None:
    """One panel per model: log10 |gradient|, unseen pixels blank, the pixel outlined.

    The title of each panel counts the blind spot (past pixels not seen).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fields), figsize=(3.2 * len(fields), 3.6), squeeze=False)
    for ax, (name, rf) in zip(axes[0], fields.items(), strict=True):
        grad = rf.grad.numpy()
        logs = np.where(grad > 0, np.log10(np.where(grad > 0, grad, 1.0)), np.nan)
        # Grey: past pixels not seen (the blind spot); white: future pixels.
        base = np.where(rf.past.numpy() & ~rf.seen.numpy(), 0.75, 1.0)
        ax.imshow(base, cmap="gray", vmin=0, vmax=1)
        ax.imshow(logs, cmap="viridis")
        i, j = rf.pixel
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2))
        ax.set_title(f"{name}\nblind spot: {rf.blind_spot} px", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    sep = ": " if len(fields) > 2 else "\n"  # narrow figures get the title on two lines
    fig.suptitle(
        f"receptive field of the red pixel{sep}log10 |d output / d input| (grey = unseen past)",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
