"""The evaluator: a classifier trained by pixelzoo on labelled digits or MNIST.

FID, KID and the Inception Score need a feature network that knows the images
being judged. Inception-v3 features mean little on 8x8 digits or 28x28 MNIST, so
for digit-like data these metrics use a small convolutional classifier trained on
the labelled training set, as the MNIST studies do (the stacked-MNIST mode count
of Metz et al. 2017 and Srivastava et al. 2017 classifies each channel with an
MNIST classifier). The same network counts modes (``evaluation/modes.py``).

An evaluator is stored as a run, like a generative model, and trained by the
same trainer (:mod:`pixelzoo.training.evaluator`)::

    RUN/config.json          {"kind": "evaluator", "evaluator": {...}, "train": {...}}
    RUN/metrics.jsonl        loss and accuracy per epoch; test accuracy at the end
    RUN/checkpoints/         safetensors weights + JSON metadata (best validation accuracy)

Network: three stages of two 3x3 convolutions (width, 2 width, 4 width maps) with
2x2 max pooling between them, a ``features``-wide ReLU layer on the flattened
maps - the feature vector of FID/KID - then dropout and the class logits (the
Inception Score's ``p(y | x)``). For natural colour images (``augment``) training
sees random flips and shifts of each image, as CIFAR-10 classifiers do; digits are
not augmented (a flipped 2 is no 2). The colour evaluator also has batch norm after
every convolution (``batchnorm``): with it a 32-wide network reaches CIFAR-10-like
accuracy in a CPU budget of minutes, where the plain one needs hours. Features are
only ever computed in eval mode, with the running statistics, so a feature vector
depends on its image alone, never on the batch it was computed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from pixelzoo.data.base import check_image_set, to_unit
from pixelzoo.errors import ConfigError, InputError
from pixelzoo.runs import Run
from pixelzoo.runs.checkpoint import load_weights


@dataclass
class EvaluatorSpec:
    """What rebuilds an evaluator: its input images, classes and widths."""

    image_shape: tuple[int, int, int]
    levels: int
    classes: int
    width: int = 32
    features: int = 128
    dropout: float = 0.3
    augment: bool = False
    batchnorm: bool = False  # False for evaluators saved before it existed


def augment(u: torch.Tensor, shift: int = 4) -> torch.Tensor:
    """Random horizontal flips and translations by up to ``shift`` pixels (reflected borders)
    of images ``u [B, C, H, W]``: the standard CIFAR-10 augmentation (random crops of the
    padded image), drawn from the global generator that the trainer seeds and checkpoints."""
    b, c, h, w = u.shape
    flip = torch.rand(b, device=u.device) < 0.5
    u = torch.where(flip[:, None, None, None], u.flip(3), u)
    padded = F.pad(u, (shift, shift, shift, shift), mode="reflect")
    dy, dx = torch.randint(0, 2 * shift + 1, (2, b, 1), device=u.device)
    rows = (dy + torch.arange(h, device=u.device))[:, None, :, None]
    cols = (dx + torch.arange(w, device=u.device))[:, None, None, :]
    index = torch.arange(b, device=u.device)[:, None, None, None]
    return padded[index, torch.arange(c, device=u.device)[None, :, None, None], rows, cols]


class DigitClassifier(nn.Module):
    """Features (``forward``) and class logits (``logits``) of images in [-1, 1].

    As a model for the trainer: ``loss((x, y))`` is the cross-entropy of integer
    images ``x`` with labels ``y``.
    """

    uses_labels = True  # the trainer hands it (images, labels) batches
    nats_kind = None  # no likelihood of images

    def __init__(self, spec: EvaluatorSpec):
        super().__init__()
        c, h, w = spec.image_shape
        if min(h, w) < 4:
            raise ConfigError(f"the evaluator needs images of at least 4x4, got {h}x{w}")
        self.spec = spec
        self.levels = spec.levels
        self.num_features = spec.features
        layers: list[nn.Module] = []
        in_maps = c
        for stage in range(3):
            maps = spec.width * 2**stage
            if stage:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            for _ in range(2):
                layers.append(nn.Conv2d(in_maps, maps, 3, padding=1, bias=not spec.batchnorm))
                if spec.batchnorm:
                    layers.append(nn.BatchNorm2d(maps))
                layers.append(nn.ReLU())
                in_maps = maps
        self.body = nn.Sequential(*layers)
        side = (-(-h // 4), -(-w // 4))  # two ceil-mode 2x2 pools
        self.embed = nn.Linear(in_maps * side[0] * side[1], spec.features)
        self.dropout = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.features, spec.classes)

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, features]`` feature vectors (after the ReLU) of images ``u`` in [-1, 1]."""
        return F.relu(self.embed(self.body(u).flatten(1)))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, classes]`` class logits of feature vectors (what :meth:`forward` gives)."""
        return self.head(self.dropout(features))

    def logits(self, u: torch.Tensor) -> torch.Tensor:
        """``[B, classes]`` class logits of images."""
        return self.classify(self.forward(u))

    def loss(self, batch) -> torch.Tensor:
        """Mean cross-entropy of a batch ``(x, y)`` of integer images and labels."""
        x, y = batch
        u = to_unit(x, self.levels)
        if self.spec.augment and self.training:
            u = augment(u)
        return F.cross_entropy(self.logits(u), y)

    def spec_dict(self) -> dict:
        """The spec as JSON (what ``config.json`` stores under "evaluator")."""
        return {**asdict(self.spec), "image_shape": list(self.spec.image_shape)}

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def predict(self, x: torch.Tensor, levels: int, batch_size: int = 1000) -> torch.Tensor:
        """The most probable class ``[N]`` of integer images ``x`` with ``levels`` values."""
        return self.class_log_probs(x, levels, batch_size).argmax(1)

    @torch.no_grad()
    def class_log_probs(self, x: torch.Tensor, levels: int, batch_size: int = 1000) -> torch.Tensor:
        """``[N, classes]`` log p(y | x) of integer images ``x`` (in eval mode, on the CPU)."""
        check_image_set(x, "images")
        if tuple(x.shape[1:]) != tuple(self.spec.image_shape):
            raise InputError(
                f"the evaluator classifies images {list(self.spec.image_shape)}, "
                f"got {list(x.shape[1:])}"
            )
        was_training = self.training
        self.eval()
        try:
            out = [
                F.log_softmax(self.logits(to_unit(b, levels).to(self.device)).float(), 1).cpu()
                for b in x.split(batch_size)
            ]
        finally:
            self.train(was_training)
        return torch.cat(out) if out else torch.zeros(0, self.spec.classes)


def classify(net: DigitClassifier, dataset) -> dict:
    """``{"accuracy", "loss"}`` of ``net`` on a labelled dataset (loss: mean cross-entropy, nats)."""
    logp = net.class_log_probs(dataset.get_batch(torch.arange(len(dataset)))[0], dataset.levels)
    return {
        "accuracy": float((logp.argmax(1) == dataset.labels).double().mean()),
        "loss": float(F.nll_loss(logp.double(), dataset.labels)),
    }


def accuracy(net: DigitClassifier, dataset) -> float:
    """Fraction of ``dataset``'s images classified as their label."""
    return classify(net, dataset)["accuracy"]


def load_evaluator(run_dir, device: str = "cpu") -> DigitClassifier:
    """The evaluator classifier stored in ``run_dir`` (see :mod:`pixelzoo.training.evaluator`)."""
    run = Run(run_dir)
    spec = run.evaluator_spec
    net = DigitClassifier(EvaluatorSpec(**{**spec, "image_shape": tuple(spec["image_shape"])}))
    load_weights(net, run.weights("best"), run.checkpoints.root)
    return net.to(device).eval()
