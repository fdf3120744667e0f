"""pixelzoo: likelihood-based image generative models, and how they compare with GANs."""

from pixelzoo import data, models
from pixelzoo.errors import PixelzooError

__version__ = "0.1.0"
__all__ = ["PixelzooError", "data", "models"]
