"""One registry of models: name -> (class, config dataclass, presets).

A model file registers itself with :func:`register`; :func:`build` resolves a
preset plus overrides into the model's config dataclass and constructs it. The
resolved config is what checkpoints store, so ``build(**spec)`` rebuilds a model
with nothing re-typed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import nn

from pixelzoo.errors import ConfigError
from pixelzoo.utils import settings


@dataclass(frozen=True)
class Entry:
    name: str
    cls: type
    config_cls: type
    presets: dict[str, dict]
    summary: str


_REGISTRY: dict[str, Entry] = {}


def register(name: str, *, config: type, presets: dict[str, dict]):
    """Class decorator adding a model under ``name``.

    ``presets`` must include ``"default"`` and ``"tiny"``: the smallest model that
    still has every part, for the tests of the properties every model must have.
    """
    for needed in ("default", "tiny"):
        if needed not in presets:
            raise ValueError(f"model {name!r} must define a {needed!r} preset")

    def decorator(cls):
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        _REGISTRY[name] = Entry(name, cls, config, presets, summary)
        cls.registry_name = name
        return cls

    return decorator


def names() -> list[str]:
    """Names of all registered models."""
    return sorted(_REGISTRY)


def get(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; valid names: {', '.join(names())}")
    return _REGISTRY[name]


def _config_fields(config_cls) -> set[str]:
    return {f.name for f in dataclasses.fields(config_cls)}


def resolve_config(name: str, preset: str | None = None, **overrides):
    """The config dataclass of ``name`` for ``preset`` (default ``"default"``) plus overrides."""
    entry = get(name)
    preset = preset or "default"
    if preset not in entry.presets:
        raise ConfigError(
            f"model {name!r} has no preset {preset!r}; valid presets: {', '.join(entry.presets)}"
        )
    fields = _config_fields(entry.config_cls)
    unknown = sorted(set(overrides) - fields)
    if {"num_classes", "cond_shape"} & set(unknown):
        capable = [n for n in names() if "num_classes" in _config_fields(_REGISTRY[n].config_cls)]
        raise ConfigError(
            f"model {name!r} cannot be conditioned; conditional models: {', '.join(capable)}"
        )
    if unknown:
        raise ConfigError(
            f"model {name!r} has no setting {unknown[0]!r}; valid settings: {', '.join(sorted(fields))}"
        )
    return settings.build(
        entry.config_cls, {**entry.presets[preset], **overrides}, f"model {name!r}"
    )


def build(
    name: str,
    image_shape: tuple[int, int, int] = (1, 28, 28),
    levels: int = 2,
    preset: str | None = None,
    **overrides,
) -> nn.Module:
    """Construct model ``name`` for images ``image_shape=(C, H, W)`` with ``levels`` values.

    ``overrides`` set fields of the model's config (e.g. ``blocks=15``) on top of
    the named ``preset``. Unknown names, presets or settings raise
    :class:`~pixelzoo.errors.ConfigError` listing the valid ones.
    """
    entry = get(name)
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ConfigError(f"image_shape must be (C, H, W) with positive sizes, got {image_shape}")
    if not 2 <= int(levels) <= 256:
        raise ConfigError(f"levels must be in 2..256, got {levels}")
    config = resolve_config(name, preset, **overrides)
    return entry.cls(image_shape, int(levels), config)
