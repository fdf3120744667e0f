"""Model registry: ``names()``, ``build(name, image_shape, levels, preset, **overrides)``.

Importing this package registers every model file below.
"""

from pixelzoo.models import (  # noqa: F401  (register their models)
    dcgan,
    gated_pixelcnn,
    pggan,
    pixelcnn,
    pixelcnn_ae,
    pixelcnn_pp,
    pixelrnn,
    vae,
)
from pixelzoo.models.base import AutoregressiveModel, GenerativeModel
from pixelzoo.models.registry import build, get, names, resolve_config

__all__ = ["AutoregressiveModel", "GenerativeModel", "build", "get", "names", "resolve_config"]
