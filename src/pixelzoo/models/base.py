"""The contract every model implements, and the autoregressive base class.

Images are integer tensors ``[B, C, H, W]`` with values in ``0..levels-1``.
:class:`GenerativeModel` holds what every model shares: the image space, the
conditioning input (checked the same way everywhere), ``spec()`` for checkpoints,
``sample`` and ``preview`` for sample grids, and how its likelihood is known
(:attr:`GenerativeModel.nats_kind`: "exact", "bound", or None for GANs).

An :class:`AutoregressiveModel` defines ``forward(x, cond) -> params [B, P, H, W]``
such that the parameters at pixel (i, j), colour c depend only on sub-pixels before
it in raster order, R -> G -> B. ``forward`` is split into :meth:`~AutoregressiveModel.embed`
(integers -> floats in [-1, 1]) and :meth:`~AutoregressiveModel.network` (floats ->
parameters), so tests can differentiate through the network's input. Everything
else - exact log-likelihood, the training loss, sampling and completion - is
written once here.

Conditioning (van den Oord et al. 2016, §2.3) is part of the contract: a model
whose config has ``num_classes=N`` takes ``cond`` = class labels ``[B]``; one with
``cond_shape=(D,)`` or ``(D, h, w)`` takes a float vector ``[B, D]`` or map
``[B, D, h, w]``. The likelihood is then exact for p(x | cond).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from pixelzoo import sampling
from pixelzoo.data.base import to_unit
from pixelzoo.errors import ConfigError, InputError
from pixelzoo.likelihoods import for_levels


class GenerativeModel(nn.Module):
    """Base class of every model: image space, conditioning, spec, sampling contract.

    Args:
        image_shape: ``(C, H, W)`` of the images modelled.
        levels: number of values K of every sub-pixel.
        config: the model's config dataclass (saved with checkpoints).

    Subclasses define ``sample(n, cond, generator)`` and ``loss(batch)`` (or, for
    GANs, the adversarial pair of losses of
    :class:`~pixelzoo.models.adversarial.AdversarialModel`), and ``log_prob`` where
    they have a likelihood.
    """

    registry_name = "?"
    # True where ``cond=None`` has a meaning of its own (the auto-encoder's own code).
    cond_optional = False
    # What log_prob returns: "exact" log p(x), a lower "bound" on it, or None (no likelihood).
    nats_kind: str | None = "exact"
    # Training settings this family is trained with unless the user sets them
    # (TrainConfig fields: lr, betas, ema); see TrainConfig.resolve_defaults.
    train_defaults: dict = {}

    def __init__(self, image_shape: tuple[int, int, int], levels: int, config):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.levels = levels
        self.config = config
        self.num_classes = getattr(config, "num_classes", None)
        shape = getattr(config, "cond_shape", None)
        self.cond_shape = tuple(int(s) for s in shape) if shape is not None else None
        name = type(self).__name__
        if self.num_classes is not None and self.cond_shape is not None:
            raise ConfigError(f"{name}: give num_classes or cond_shape, not both")
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"{name}: num_classes must be at least 2, got {self.num_classes}")
        if self.cond_shape is not None and (
            len(self.cond_shape) not in (1, 3) or min(self.cond_shape) < 1
        ):
            raise ConfigError(
                f"{name}: cond_shape must be (D,) for a vector or (D, h, w) for a map, "
                f"got {self.cond_shape}"
            )

    def averaged(self) -> nn.Module:
        """The part of the model whose weights Polyak averaging (``ema``) averages."""
        return self

    @property
    def cond_kind(self) -> str | None:
        """``"class"``, ``"vector"``, ``"spatial"`` or None (unconditional)."""
        if self.num_classes is not None:
            return "class"
        if self.cond_shape is not None:
            return "vector" if len(self.cond_shape) == 1 else "spatial"
        return None

    @property
    def conditional(self) -> bool:
        return self.cond_kind is not None

    @property
    def dims(self) -> int:
        """Number of sub-pixels C*H*W (the 'dim' of bits/dim)."""
        c, h, w = self.image_shape
        return c * h * w

    def spec(self) -> dict:
        """What :func:`pixelzoo.models.build` needs to rebuild this model (JSON-able)."""
        return {
            "name": self.registry_name,
            "image_shape": list(self.image_shape),
            "levels": self.levels,
            "config": dataclasses.asdict(self.config),
        }

    def save_pretrained(self, out, *, record: dict | None = None, card: str | None = None):
        """Save into folder ``out`` in the model-repository layout (config.json,
        model.safetensors, a README.md model card), which ``pixelzoo.from_pretrained``
        loads back; see :mod:`pixelzoo.models.pretrained`."""
        from pixelzoo.models.pretrained import save_pretrained

        return save_pretrained(self, out, record=record, card=card)

    # The checks read values (a min and a max), which a compiled graph cannot hold: under
    # torch.compile (a long training run) they run eagerly, ahead of the compiled loss.
    @torch.compiler.disable
    def check_images(self, x) -> None:
        """Raise :class:`InputError` unless ``x`` is a valid batch of images for this model."""
        name = self.registry_name
        if not isinstance(x, torch.Tensor):
            raise InputError(f"{name}: images must be a torch.Tensor, got {type(x).__name__}")
        if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
            raise InputError(
                f"{name}: images must be an integer tensor with values in 0..{self.levels - 1}, "
                f"got dtype {x.dtype} (quantize with pixelzoo.data.quantize first)"
            )
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise InputError(
                f"{name}: images must have shape [B, {', '.join(map(str, self.image_shape))}], "
                f"got {list(x.shape)}"
            )
        if x.numel() and (int(x.min()) < 0 or int(x.max()) >= self.levels):
            raise InputError(
                f"{name}: image values must be in 0..{self.levels - 1}, found values in "
                f"{int(x.min())}..{int(x.max())}"
            )

    @torch.compiler.disable
    def check_cond(self, cond, batch: int) -> None:
        """Raise :class:`InputError` unless ``cond`` fits this model and a batch of ``batch``."""
        name, kind = self.registry_name, self.cond_kind
        if kind is None:
            if cond is not None:
                raise InputError(f"{name} is unconditional: cond must be None")
            return
        if kind == "class":
            wanted = f"class labels, an integer tensor [{batch}] in 0..{self.num_classes - 1}"
        else:
            wanted = f"a float tensor [{batch}, {', '.join(map(str, self.cond_shape))}]"
        if cond is None:
            if self.cond_optional:
                return
            raise InputError(f"{name} is conditioned on {kind} input: pass cond = {wanted}")
        if not isinstance(cond, torch.Tensor):
            raise InputError(f"{name}: cond must be {wanted}, got {type(cond).__name__}")
        if kind == "class":
            if cond.is_floating_point() or cond.is_complex() or tuple(cond.shape) != (batch,):
                raise InputError(
                    f"{name}: cond must be {wanted}, got {cond.dtype} {list(cond.shape)}"
                )
            if batch and (int(cond.min()) < 0 or int(cond.max()) >= self.num_classes):
                raise InputError(
                    f"{name}: class labels must be in 0..{self.num_classes - 1}, found "
                    f"{int(cond.min())}..{int(cond.max())}"
                )
            return
        if not cond.is_floating_point() or tuple(cond.shape) != (batch, *self.cond_shape):
            raise InputError(f"{name}: cond must be {wanted}, got {cond.dtype} {list(cond.shape)}")
        if not torch.isfinite(cond).all():
            raise InputError(f"{name}: cond contains NaN or inf")

    def sample_cond(self, n: int, klass: int | None = None):
        """The ``cond`` with which to draw ``n`` samples without given inputs.

        None for an unconditional model. For a class-conditional one: ``n`` labels of
        class ``klass``, or with ``klass=None`` the classes ``0, 1, .., N-1, 0, ..`` in
        turn (samples of p(x) = mean_y p(x | y) when N divides n). A model conditioned
        on vectors, maps or its own code has no such ``cond``: one sentence says so.
        """
        name, kind = self.registry_name, self.cond_kind
        if self.cond_optional:
            raise ConfigError(
                f"{name} models p(x | its own code), not p(x): it has no samples without given "
                "images; use pixelzoo reconstruct (model.reconstruct) to decode their codes"
            )
        if kind is None:
            if klass is not None:
                raise ConfigError(f"a class was asked for, but {name} is not class-conditional")
            return None
        if kind != "class":
            raise ConfigError(
                f"{name} is conditioned on {kind} input, which no dataset provides: pass cond "
                "to model.sample yourself"
            )
        if klass is None:
            return torch.arange(n) % self.num_classes
        if not 0 <= klass < self.num_classes:
            raise ConfigError(f"class must be in 0..{self.num_classes - 1}, got {klass}")
        return torch.full((n,), klass, dtype=torch.long)

    def completion_cond(self, x: torch.Tensor, labels: torch.Tensor | None):
        """The ``cond`` with which to complete images ``x`` (whose labels are ``labels``).

        A class-conditional model completes each image given its own label; an
        unconditional one needs none.
        """
        if self.cond_kind == "class":
            if labels is None:
                raise ConfigError(
                    f"{self.registry_name} is class-conditional; the images have no labels"
                )
            return labels
        return self.sample_cond(len(x))

    def preview(self, n: int, dataset, generator: torch.Generator | None = None):
        """Images for the trainer's grid after each epoch, and the grid's row length.

        Class-conditional models draw class ``k % N`` for image k, one class per
        column. Models that need ``cond`` for which data has none return None.
        """
        if self.conditional and self.cond_kind != "class":
            return None, None
        nrow = self.num_classes if self.cond_kind == "class" else None
        return self.sample(n, self.sample_cond(n), generator), nrow

    @property
    def conditioned_on(self) -> str | None:
        """What :meth:`log_prob` is conditioned on when evaluated on a dataset, in words."""
        if self.cond_optional:
            return "each image's own code (a reconstruction NLL, not a likelihood of x)"
        return "each image's label" if self.cond_kind == "class" else None

    @property
    def nll_caveat(self) -> str | None:
        """What a reader must know about the NLL figure (None for an exact likelihood)."""
        return None

    @property
    def nll_route(self) -> str:
        """How :meth:`log_prob` obtains its figure, in a word ("exact", "IWAE-64", ...)."""
        return "exact"

    @property
    def uses_labels(self) -> bool:
        """Whether training batches carry the data's labels (class-conditional models)."""
        return self.cond_kind == "class"

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the weights."""
        return next(self.parameters()).dtype

    @property
    def device(self) -> torch.device:
        """The device of the weights."""
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(
        self,
        n: int,
        cond=None,
        generator: torch.Generator | None = None,
        *,
        progress: bool = False,
        sampler: str = "auto",
    ) -> torch.Tensor:
        """``n`` integer images ``[n, C, H, W]`` drawn in one network pass (:meth:`draw`).

        Autoregressive models override this with their samplers; ``sampler`` only
        has a choice there.
        """
        self.check_cond(cond, n)
        if sampler != "auto":
            raise ConfigError(
                f"{self.registry_name} draws a sample in one network pass; "
                f"sampler={sampler!r} applies to autoregressive models only"
            )
        return self.draw(n, generator)

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` integer images from one pass of the model (latent-variable models)."""
        raise NotImplementedError

    def log_prob(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """``[B]`` log-likelihood of integer images in nats (see :attr:`nats_kind`)."""
        raise NotImplementedError


class AutoregressiveModel(GenerativeModel):
    """Base class: exact likelihood and ancestral sampling for a causal network.

    Args:
        image_shape: ``(C, H, W)`` of the images modelled.
        levels: number of values K of every sub-pixel.
        config: the model's config dataclass (saved with checkpoints).
    """

    def __init__(self, image_shape: tuple[int, int, int], levels: int, config):
        super().__init__(image_shape, levels, config)
        self.likelihood = for_levels(image_shape[0], levels)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Integer images -> float network input in [-1, 1]."""
        return to_unit(x, self.levels)

    def network(self, u: torch.Tensor, cond=None) -> torch.Tensor:
        """Float images ``[B, C, H, W]`` -> parameters ``[B, P, H, W]`` (causal in u)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        """Distribution parameters ``[B, P, H, W]`` for every sub-pixel."""
        return self.network(self.embed(x).to(self.dtype), cond)

    def cached_stepper(self, x: torch.Tensor, cond=None):
        """A stepper that computes each activation once, as it becomes final, or None.

        Models with a cached sampler return one (see :mod:`pixelzoo.sampling.steppers`
        for the interface); the default None makes :meth:`sample` use the naive one.
        """
        return None

    @classmethod
    def has_cached_sampler(cls) -> bool:
        """Whether :meth:`cached_stepper` is defined for this model (derived, not declared)."""
        return cls.cached_stepper is not AutoregressiveModel.cached_stepper

    def log_prob(self, x: torch.Tensor, cond=None, reduction: str = "sum") -> torch.Tensor:
        """Exact log-likelihood in nats.

        Args:
            x: integer images ``[B, C, H, W]`` in ``0..levels-1``.
            cond: conditioning input (None for unconditional models).
            reduction: ``"sum"`` -> ``[B]`` per image; ``"none"`` -> ``[B, C, H, W]``,
                the log-probability of each sub-pixel given all before it.
        """
        if reduction not in ("sum", "none"):
            raise InputError(f"reduction must be 'sum' or 'none', got {reduction!r}")
        self.check_images(x)
        self.check_cond(cond, len(x))
        lp = self.likelihood.log_prob(self(x, cond), x)
        return lp if reduction == "none" else lp.flatten(1).sum(1)

    def loss(self, batch) -> torch.Tensor:
        """Mean negative log-likelihood in nats per sub-pixel (= bits/dim * ln 2).

        ``batch`` is images ``x`` or a pair ``(x, cond)``. Dividing by C*H*W keeps
        the loss's scale (and so learning rates and gradient clipping) comparable
        across image sizes.
        """
        x, cond = batch if isinstance(batch, (tuple, list)) else (batch, None)
        return -self.log_prob(x, cond).mean() / self.dims

    def sample(
        self,
        n: int,
        cond=None,
        generator: torch.Generator | None = None,
        *,
        progress: bool = False,
        sampler: str = "auto",
    ) -> torch.Tensor:
        """``n`` images ``[n, C, H, W]`` drawn by ancestral sampling, seeded by ``generator``.

        ``sampler``: ``"cached"`` computes each layer's activations once, as they
        become final (:mod:`pixelzoo.sampling.cached`); ``"naive"`` runs the whole
        network once per sub-pixel (the reference); ``"auto"`` takes the cached one
        where the model has it. Both give the same images for the same generator.
        The images are drawn :data:`~pixelzoo.sampling.ancestral.SAMPLE_BATCH` at a
        time (the memory a cached sampler needs grows with the images it draws).
        """
        return sampling.sample(self, n, cond, generator, progress=progress, sampler=sampler)

    def complete(
        self,
        x: torch.Tensor,
        rows: int,
        cond=None,
        generator: torch.Generator | None = None,
        *,
        progress: bool = False,
        sampler: str = "auto",
    ) -> torch.Tensor:
        """Keep the top ``rows`` rows of images ``x`` and sample the rest (see :meth:`sample`)."""
        return sampling.complete(self, x, rows, cond, generator, progress=progress, sampler=sampler)
