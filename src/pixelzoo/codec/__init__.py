"""Lossless compression with an autoregressive model: its exact likelihood as a real code.

An autoregressive model gives ``p(x) = prod_t p(x_t | x_<t)`` sub-pixel by sub-pixel; an
entropy coder fed those conditionals writes ``x`` in ``-log2 p(x)`` bits plus a constant
(Shannon 1948; the range coder of Martin 1979). So the NLL in bits/dim becomes the size
of a file, comparable with PNG, WebP and JPEG-XL (``pixelzoo compress``;
``benchmarks/compression.py``).

How it works:

* The coder is ``constriction``'s range coder (a queue: the first symbol encoded is the
  first decoded, so pixels are coded in raster order as they are produced) with its
  categorical model, ``perfect=False``, which turns a float64 probability table into an
  exactly invertible integer table (24-bit precision) and gives every level a non-zero
  share, so even an image the model finds wildly unlikely is coded, at up to 24 bits a
  sub-pixel.
* The integer tables must be bit-identical at both ends. They are, because encoder and
  decoder compute them the same way: both walk the model's stepper (the cached sampler's,
  or the naive one for models without it; :mod:`pixelzoo.sampling.steppers`) over the same
  batches of images, feeding it the same pixels in the same order, on the same kind of
  device, with the same number of threads (recorded in the header and set for decoding).
  A parallel forward pass for the encoder would be faster but gives different float
  rounding from the stepper, and a table that differs in one bit decodes garbage.
* For each sub-pixel the table over the K levels comes from the likelihood's own
  ``log_prob`` evaluated at all K values of that sub-pixel, the earlier ones of the pixel
  fixed (:func:`level_log_probs`): one route for Bernoulli, the categorical softmax, the
  sub-pixel softmax and PixelCNN++'s logistic mixture (whose channel c depends on the
  earlier channels of the pixel, R -> G -> B).
* Class labels of a class-conditional model go in the stream first, uniformly coded
  (log2 N bits an image).

A VAE has no exact likelihood; it is coded by bits back (:mod:`pixelzoo.codec.bitsback`), in
the same header with another magic, through the same :func:`encode` and :func:`decode`.

File layout: a 38-byte header (:data:`HEADER`: magic, format version, the first 8 bytes of
the model's SHA-256, shape, levels, classes, count, batch, threads, device, the length of
the code, a CRC-32 of the pixels and labels), then the code as little-endian 32-bit words.
The header is the whole per-file constant beyond the code (a single 28x28 binary digit codes
in about 16 bytes, so a verbose header would double it). A file
made with another model, a truncated or corrupt file, and images of the wrong shape or
range are each refused in one sentence.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import struct
import zlib
from dataclasses import dataclass

import constriction
import numpy as np
import torch
from torch.nn.utils import parametrize
from tqdm.auto import tqdm

from pixelzoo.codec import bitsback
from pixelzoo.errors import InputError, PixelzooError
from pixelzoo.models.base import AutoregressiveModel
from pixelzoo.sampling.ancestral import make_stepper

MAGIC = b"PZC"
FORMAT_VERSION = 1
# magic, version, model hash (8 bytes), C, H, W, levels, classes (0: none), count, batch,
# threads, device (0 cpu, 1 cuda), code bytes, CRC-32
HEADER = struct.Struct("<3sB8sHHHHHIHBBII")
DEVICES = ("cpu", "cuda")
# Images walked through the stepper at once (both ends use the header's value).
BATCH = 64


class CodecError(PixelzooError):
    """A compressed file that cannot be decoded with this model (one sentence)."""


@dataclass
class Encoded:
    """A compressed stream and what it cost."""

    data: bytes
    count: int
    dims: int
    # sum of -log2 p under the coder's float tables: the model's NLL in bits (plus log2 N bits
    # an image for the class labels of a class-conditional model); a VAE's bits-back ideal
    ideal_bits: float
    # what ideal_bits is, for a reader
    ideal_label: str = "the model's NLL"

    @property
    def bits(self) -> int:
        return 8 * len(self.data)

    @property
    def bits_per_dim(self) -> float:
        return self.bits / (self.count * self.dims)

    @property
    def ideal_bits_per_dim(self) -> float:
        return self.ideal_bits / (self.count * self.dims)


def model_hash(model) -> str:
    """SHA-256 of the model's spec (JSON) and of every weight's bytes, in name order."""
    h = hashlib.sha256(json.dumps(model.spec(), sort_keys=True).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def check_codable(model) -> None:
    """Raise :class:`CodecError` unless ``model`` has an exact, sequential likelihood or is
    a VAE (coded by bits back, :mod:`pixelzoo.codec.bitsback`)."""
    name = getattr(model, "registry_name", type(model).__name__)
    if bitsback.codes_with_bits_back(model):
        return
    if not isinstance(model, AutoregressiveModel):
        raise CodecError(
            f"{name} has no likelihood to code with; compress with an autoregressive model "
            "(pixelcnn, row_lstm, diagonal_bilstm, gated_pixelcnn, pixelcnn_pp) or a vae "
            "(bits back)"
        )
    if model.cond_kind not in (None, "class") or model.cond_optional:
        raise CodecError(
            f"{name} is conditioned on a {model.cond_kind or 'code of its own'}, which the "
            "decoder would not have; only unconditional and class-conditional models compress"
        )


def level_log_probs(likelihood, params: torch.Tensor, pixel: torch.Tensor, channel: int):
    """``log p(x_c = v | earlier channels)`` for every level v: ``[B, K]`` (float64).

    ``params [B, P]`` are the network's output for this sub-pixel (or pixel, for a joint
    likelihood), ``pixel [B, C]`` the pixel's levels so far (channels >= ``channel`` are
    not read). The likelihood's ``log_prob`` is evaluated at the K values of the channel
    laid along a spatial axis, so every likelihood is coded by its own arithmetic.
    """
    levels = likelihood.levels
    values = pixel[:, :, None].repeat(1, 1, levels)  # (B, C, K): the K candidates
    values[:, channel] = torch.arange(levels, device=pixel.device)
    per_value = params[:, :, None].expand(-1, -1, levels)  # (B, P, K)
    return likelihood.log_prob(per_value, values)[:, channel].double()


@contextlib.contextmanager
def threads(n: int):
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _walk(model, x, cond, code, *, progress: bool, desc: str) -> float:
    """Walk the stepper over the all-zero images ``x``, filling them sub-pixel by sub-pixel.

    ``code(probs [B, K] float64, c, i, j) -> [B]`` codes sub-pixel (c, i, j) of every image
    and returns its levels (encoding: the true ones, after writing them; decoding: the ones
    read). The encoder fills ``x`` exactly as the decoder does, so the stepper sees the same
    inputs, bit for bit, at every step. Returns the sum of -log2 p of the levels.
    """
    n, channels, height, width = x.shape
    likelihood = model.likelihood
    ideal = 0.0
    with (
        parametrize.cached(),
        tqdm(total=height * width, desc=desc, unit="px", disable=not progress, leave=False) as bar,
    ):
        stepper = make_stepper(model, "auto", x, cond)
        for i in range(height):
            stepper.begin_row(i)
            for j in range(width):
                params = None
                for c in range(channels):
                    if params is None or not likelihood.joint:
                        params = stepper.step(x, i, j, need=True)
                    log_p = level_log_probs(likelihood, params, x[:, :, i, j], c)
                    x[:, c, i, j] = code(log_p.exp().cpu().numpy(), c, i, j).to(x.device)
                    ideal -= float(log_p.gather(1, x[:, c, i, j, None]).sum()) / math.log(2.0)
                stepper.commit(x, i, j)
                bar.update()
    return ideal


def batches(n: int, batch: int):
    return [(k, min(batch, n - k)) for k in range(0, n, batch)]


def crc(x: torch.Tensor, cond) -> int:
    crc = zlib.crc32(x.to(torch.int32).cpu().numpy().tobytes())
    if cond is not None:
        crc = zlib.crc32(cond.to(torch.int32).cpu().numpy().tobytes(), crc)
    return crc


@torch.no_grad()
def encode(model, x: torch.Tensor, cond=None, *, progress: bool = False, batch: int | None = None):
    """Compress images ``x [N, C, H, W]`` (levels) (and class labels ``cond [N]``): :class:`Encoded`.

    ``batch``: images walked through the stepper at once (default :data:`BATCH`; a VAE's
    link, default :data:`pixelzoo.codec.bitsback.BATCH`).
    """
    check_codable(model)
    if bitsback.codes_with_bits_back(model):
        return bitsback.encode(model, x, cond, progress=progress, batch=batch or bitsback.BATCH)
    batch = batch or BATCH
    check_request(model, x, batch)
    n = len(x)
    if model.cond_kind == "class":
        if cond is None:
            raise InputError(
                f"{model.registry_name} is class-conditional: give the images' class labels"
            )
        model.check_cond(cond, n)
    elif cond is not None:
        raise InputError(f"{model.registry_name} is not conditional: give no labels")
    con = constriction
    family = con.stream.model.Categorical(perfect=False)
    encoder = con.stream.queue.RangeEncoder()
    device = model.device
    x = x.cpu()
    if model.cond_kind == "class":
        labels = cond.to(torch.int32).cpu().numpy()
        encoder.encode(labels, con.stream.model.Uniform(model.num_classes))
    n_threads = checked_threads()
    kind = checked_device(model)
    was_training = model.training
    model.eval()
    ideal = 0.0 if model.cond_kind != "class" else n * math.log2(model.num_classes)
    try:
        for k, m in tqdm(batches(n, batch), desc="batches", disable=not progress or n <= batch):
            truth = x[k : k + m].long()
            c_part = None if cond is None else cond[k : k + m].to(device)

            def put(probs, c, i, j, truth=truth):
                levels = truth[:, c, i, j]
                encoder.encode(levels.to(torch.int32).numpy(), family, probs)
                return levels

            work = torch.zeros(truth.shape, dtype=torch.long, device=device)
            ideal += _walk(model, work, c_part, put, progress=progress and n <= batch,
                           desc="encoding")  # fmt: skip
    finally:
        model.train(was_training)
    words = encoder.get_compressed().astype("<u4").tobytes()
    head = pack_header(MAGIC, model, n, batch, n_threads, kind, len(words), crc(x, cond))
    return Encoded(data=head + words, count=n, dims=model.dims, ideal_bits=ideal)


def check_request(model, x: torch.Tensor, batch: int) -> None:
    """One sentence unless ``x`` are images for ``model`` (at least one) and ``batch`` fits."""
    model.check_images(x)
    if len(x) < 1:
        raise InputError("nothing to compress: no images were given")
    if not 1 <= batch <= 65535:
        raise InputError(f"batch must be in 1..65535 (a 16-bit header field), got {batch}")


def checked_threads() -> int:
    """This process's thread count, which the decoder must use too (a one-byte header field)."""
    n = torch.get_num_threads()
    if n > 255:
        raise InputError(f"compress with at most 255 threads (torch.set_num_threads), not {n}")
    return n


def checked_device(model) -> str:
    """The kind of device the model is on (a header field); one sentence if not codable there."""
    kind = model.device.type
    if kind not in DEVICES:
        raise CodecError(f"compression runs on {' or '.join(DEVICES)}, not {kind}")
    return kind


def pack_header(magic: bytes, model, n, batch, n_threads, device: str, code_bytes, crc32) -> bytes:
    """The :data:`HEADER` of a stream of ``n`` images coded with ``model``."""
    channels, height, width = model.image_shape
    return HEADER.pack(
        magic, FORMAT_VERSION, bytes.fromhex(model_hash(model))[:8], channels, height, width,
        model.levels, model.num_classes or 0, n, batch, n_threads, DEVICES.index(device),
        code_bytes, crc32,
    )  # fmt: skip


def read_header(data: bytes, source: str = "the file", magic: bytes = MAGIC) -> tuple[dict, bytes]:
    """The header (as a dict) and the code of a compressed stream; one sentence if it is not one.

    ``magic``: the kind of stream expected (:data:`MAGIC` from an autoregressive model,
    :data:`pixelzoo.codec.bitsback.MAGIC` from a VAE).
    """
    kinds = {MAGIC: "an autoregressive model", bitsback.MAGIC: "a VAE (bits back)"}
    start = data[: len(magic)]
    if start not in kinds:
        raise CodecError(
            f"{source} is not a pixelzoo compressed file (it does not start with {MAGIC!r} "
            f"or {bitsback.MAGIC!r})"
        )
    if start != magic:
        raise CodecError(
            f"{source} was made with {kinds[start]}; decode it with that model, not with "
            f"{kinds[magic]}"
        )
    if len(data) < HEADER.size:
        raise CodecError(f"{source} is truncated: it ends inside its {HEADER.size}-byte header")
    fields = HEADER.unpack(data[: HEADER.size])
    keys = ("magic", "format", "model_hash", "channels", "height", "width", "levels", "classes",
            "count", "batch", "threads", "device", "code_bytes", "crc32")  # fmt: skip
    header = dict(zip(keys, fields, strict=True))
    if header["format"] != FORMAT_VERSION:
        raise CodecError(
            f"{source} is in format {header['format']}; this pixelzoo reads format {FORMAT_VERSION}"
        )
    if (
        header["device"] >= len(DEVICES)
        or min(header["count"], header["batch"], header["threads"]) < 1
    ):
        raise CodecError(f"{source} is corrupt: its header holds impossible values")
    header["model_hash"] = header["model_hash"].hex()
    header["device"] = DEVICES[header["device"]]
    header["shape"] = [header["channels"], header["height"], header["width"]]
    code = data[HEADER.size :]
    if len(code) != header["code_bytes"]:
        what = "truncated" if len(code) < header["code_bytes"] else "corrupt"
        raise CodecError(
            f"{source} is {what}: its header announces {header['code_bytes']:,} bytes of code, "
            f"the file holds {len(code):,}"
        )
    return header, code


@torch.no_grad()
def decode(model, data: bytes, *, progress: bool = False, source: str = "the file"):
    """The images ``[N, C, H, W]`` (int64) and labels (or None) that :func:`encode` compressed."""
    check_codable(model)
    if bitsback.codes_with_bits_back(model):
        return bitsback.decode(model, data, progress=progress, source=source)
    header, code = read_header(data, source)
    check_header_model(header, model, source)
    if len(code) % 4:
        raise CodecError(f"{source} is corrupt: its code is not a whole number of 32-bit words")
    con = constriction
    family = con.stream.model.Categorical(perfect=False)
    decoder = con.stream.queue.RangeDecoder(np.frombuffer(code, dtype="<u4").astype(np.uint32))
    n = header["count"]
    cond = None
    if header["classes"]:
        try:
            labels = decoder.decode(con.stream.model.Uniform(header["classes"]), n)
        except (ValueError, RuntimeError, AssertionError) as e:
            raise CodecError(f"{source} is corrupt: its code cannot be decoded ({e})") from None
        cond = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    x = torch.zeros(n, *header["shape"], dtype=torch.long, device=model.device)
    was_training = model.training
    model.eval()
    try:
        with threads(header["threads"]):
            for k, m in tqdm(batches(n, header["batch"]), desc="batches",
                             disable=not progress or n <= header["batch"]):  # fmt: skip
                part = x[k : k + m]
                c_part = None if cond is None else cond[k : k + m].to(model.device)

                def get(probs, c, i, j):
                    try:
                        levels = decoder.decode(family, probs)
                    except (ValueError, RuntimeError, AssertionError) as e:
                        raise CodecError(
                            f"{source} is corrupt: its code cannot be decoded ({e})"
                        ) from None
                    return torch.from_numpy(np.asarray(levels, np.int64))

                _walk(model, part, c_part, get, progress=progress and n <= header["batch"],
                      desc="decoding")  # fmt: skip
    finally:
        model.train(was_training)
    x = x.cpu()
    check_crc(x, cond, header, source)
    return x, cond


def check_header_model(header: dict, model, source: str) -> None:
    """One sentence unless the stream was made with ``model``, on this kind of device."""
    mine = model_hash(model)[:16]
    if (
        header["model_hash"] != mine
        or header["shape"] != list(model.image_shape)
        or (header["levels"] != model.levels)
    ):
        raise CodecError(
            f"{source} was made with another model (weights {header['model_hash']}, images "
            f"{tuple(header['shape'])} at {header['levels']} levels); this "
            f"{model.registry_name} is {mine}, {model.image_shape} at {model.levels} levels"
        )
    if header["device"] != model.device.type:
        raise CodecError(
            f"{source} was encoded on {header['device']} and this model is on "
            f"{model.device.type}: the probability tables are bit-identical only on the same "
            f"kind of device; decode on {header['device']}"
        )


def check_crc(x: torch.Tensor, cond, header: dict, source: str) -> None:
    """One sentence unless the decoded pixels (and labels) are the ones the file was made from."""
    if crc(x, cond) != header["crc32"]:
        raise CodecError(
            f"{source} did not decode to the pixels it was made from (CRC-32 mismatch): the file "
            f"is corrupt, or this machine computes the model's probabilities differently "
            f"(it was encoded with {header['threads']} thread(s) on {header['device']}; torch and "
            "the CPU's instruction set must match too)"
        )
