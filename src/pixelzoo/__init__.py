"""pixelzoo: likelihood-based image generative models, and how they compare with GANs.

Subpackages load on first use (``pixelzoo.models``, ``pixelzoo.data``, ...), so that
``import pixelzoo`` and the command line start without importing torch.
"""

import importlib

from pixelzoo.errors import PixelzooError

__version__ = "0.1.0"
__all__ = ["PixelzooError", "data", "from_pretrained", "models"]


def __getattr__(name: str):
    if name == "from_pretrained":  # pixelzoo.from_pretrained(FOLDER | "pretrained:NAME" | HUB_ID)
        return importlib.import_module("pixelzoo.runs.pretrained").from_pretrained
    if name in ("data", "models", "nn", "likelihoods", "sampling", "runs", "evaluation",
                "training", "report", "codec"):  # fmt: skip
        return importlib.import_module(f"pixelzoo.{name}")
    raise AttributeError(f"module 'pixelzoo' has no attribute {name!r}")
