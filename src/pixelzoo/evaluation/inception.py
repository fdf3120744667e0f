"""Inception-v3 as the feature network of FID / KID / IS for natural images, from a local file.

The network is the one FID is defined on (Heusel et al. 2017): the TensorFlow
Inception-v3 graph of 2015-12-05 (Szegedy et al. 2016, "Rethinking the Inception
Architecture", figures 5-7 and table 1), with 1008 output classes, as ported to
PyTorch by the pytorch-fid project. Its weights file is
``pt_inception-2015-12-05-6726825d.pth`` (about 91 MB) from
https://github.com/mseitzer/pytorch-fid/releases (v0.1.0). pixelzoo never
downloads it: save it anywhere and pass its path (``--inception FILE``, or the
``PIXELZOO_INCEPTION`` environment variable). The file is a plain state dict of
tensors; it is read with ``torch.load(weights_only=True)``, which refuses
anything but tensors and containers, or from a ``.safetensors`` copy.

The architecture is written here from the paper's and the graph's layer table,
with the graph's differences from torchvision's Inception3, which FID numbers
depend on:

- the average pools of the A, C and first E blocks do not count the padding;
- the last E block pools with a 3x3 max pool instead of an average pool;
- batch norm with eps = 0.001; no auxiliary classifier; 1008 logits.

NOTE: inputs are resized to 299x299 bilinearly (no antialiasing) and scaled to
[-1, 1], as pytorch-fid does; torch-fidelity mimics TensorFlow's resize instead,
so FIDs from the two tools differ slightly. Grey images are repeated into the
three channels.
The Inception Score takes the softmax of the 1008 logits **without the final layer's
bias**, as the original code does (Salimans et al.'s ``inception_score.py``
multiplies the pool features by the softmax weights only) and as torchmetrics'
default (``logits_unbiased``); :meth:`InceptionV3.classify` computes them.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.errors import CheckpointError, ConfigError

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_NAME
)


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001), ReLU."""

    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block (figure 5): 1x1, 5x5, double 3x3 and pooled branches."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch5x5_2(self.branch5x5_1(x)),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17: strided 3x3, strided double 3x3, max pool."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat(
            [
                self.branch3x3(x),
                self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                F.max_pool2d(x, 3, stride=2),
            ],
            1,
        )


class InceptionC(nn.Module):
    """17x17 block (figure 6): 7x7 convolutions factorized into 1x7 and 7x1."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        row, col = {"padding": (0, 3)}, {"padding": (3, 0)}
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), **col)
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), **row)
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        dbl = x
        for k in range(1, 6):
            dbl = getattr(self, f"branch7x7dbl_{k}")(dbl)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
                dbl,
                self.branch_pool(_avg_pool(x)),
            ],
            1,
        )


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b = x
        for k in range(1, 5):
            b = getattr(self, f"branch7x7x3_{k}")(b)
        return torch.cat(
            [self.branch3x3_2(self.branch3x3_1(x)), b, F.max_pool2d(x, 3, stride=2)], 1
        )


class InceptionE(nn.Module):
    """8x8 block (figure 7): expanded 1x3 / 3x1 branches; ``max_pool`` in the graph's last block."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg_pool(x)
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(a),
                self.branch3x3_2b(a),
                self.branch3x3dbl_3a(d),
                self.branch3x3dbl_3b(d),
                self.branch_pool(pooled),
            ],
            1,
        )


class InceptionV3(nn.Module):
    """FID's Inception-v3: ``forward`` gives the 2048 pool features, ``logits`` the 1008 class logits.

    Inputs are images in [-1, 1] of any size and 1 or 3 channels (the feature
    network contract of :func:`pixelzoo.evaluation.feature_metrics`).
    """

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, 2048]`` pool features of images ``u`` in [-1, 1]."""
        if u.shape[1] == 1:
            u = u.expand(-1, 3, -1, -1)
        x = F.interpolate(u, size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = F.max_pool2d(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)), 3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return x.mean(dim=(2, 3))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, 1008]`` logits of pool features, without the bias (see the module docstring)."""
        return features @ self.fc.weight.T

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, 1008]`` class logits of images (for the Inception Score; no bias)."""
        return self.classify(self.forward(u))


def load_inception(path=None, device: str = "cpu") -> InceptionV3:
    """FID's Inception-v3 with weights from ``path`` (or ``$PIXELZOO_INCEPTION``), in eval mode."""
    path = path or os.environ.get("PIXELZOO_INCEPTION")
    if not path:
        raise ConfigError(
            f"FID on natural images needs Inception-v3 weights: download {WEIGHTS_NAME} from "
            f"{WEIGHTS_URL} and pass its path with --inception (or set PIXELZOO_INCEPTION)"
        )
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"Inception-v3 weights file {path} does not exist (expected {WEIGHTS_NAME} from {WEIGHTS_URL})"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unreadable file: pickle, zip or safetensors errors alike
        raise CheckpointError(
            f"Inception-v3 weights file {path} cannot be read ({type(e).__name__})"
        ) from None
    net = InceptionV3()
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state dict of Inception-v3 weights")

    def names(d):
        return {k for k in d if not k.endswith("num_batches_tracked")}

    mismatch = names(net.state_dict()) ^ names(state)
    if mismatch:
        raise CheckpointError(
            f"{path} is not FID's Inception-v3 ({len(mismatch)} tensor names differ, e.g. {sorted(mismatch)[0]!r})"
        )
    try:
        net.load_state_dict(state, strict=False)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[-1].strip()
        raise CheckpointError(f"{path} does not fit FID's Inception-v3 ({first})") from None
    return net.to(device).eval()
