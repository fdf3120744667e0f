"""Model registry: ``names()``, ``build(name, image_shape, levels, preset, **overrides)``.

Importing this package registers every model file below.
"""

from pixelzoo.models import gated_pixelcnn, pixelcnn, pixelcnn_ae, pixelcnn_pp, pixelrnn  # noqa: F401  (register their models)
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.models.registry import build, get, names, resolve_config

__all__ = ["AutoregressiveModel", "build", "get", "names", "resolve_config"]
