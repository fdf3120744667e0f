"""Bits-back coding with a VAE: the latent-variable family's real code.

Townsend, Bird & Barber 2019, "Practical Lossless Compression with Latent Variables
using Bits Back Coding" (BB-ANS), §2-3. A VAE has no exact likelihood, only the ELBO,
but bits-back coding makes the negative ELBO the length of a real file. To code an
image ``x`` onto a stack of bits already written:

1. *decode* a latent ``z`` from the stack with ``q(z | x)``: it takes ``-log q(z | x)``
   bits **off** the stack (the bits of earlier images, borrowed);
2. encode ``x`` with ``p(x | z)``;
3. encode ``z`` with the prior ``p(z)``.

The stack grows by ``-log p(x | z) - log p(z) + log q(z | x)``, whose mean over
``z ~ q`` is the negative ELBO. The decoder runs the steps backwards: pop ``z`` with
``p(z)``, pop ``x`` with ``p(x | z)``, then *encode* ``z`` with ``q(z | x)``, which gives
back exactly the bits step 1 borrowed, and so the previous image's code.

How it is built here:

* The coder is ``constriction``'s ANS coder (a stack, last in first out, as bits back
  needs), with its categorical model (``perfect=False``: float64 tables made exactly
  invertible at 24-bit precision, every symbol given a non-zero share).
* Each latent dimension is cut into ``2**LATENT_BITS`` buckets of equal mass under the
  prior N(0, 1) (BB-ANS §3.2): the prior is uniform over the buckets (exactly
  ``LATENT_BITS`` bits a dimension); q's mass in a bucket is the difference of its
  Gaussian CDF at the bucket's edges; the decoder network reads the bucket's centre,
  the prior's median within it.
* Images go in links (one pass of each network per link) of one image at first, growing
  by an eighth of the images so far up to ``batch``. A link borrows only when the stack holds at least twice the bits
  it would take (q's entropy) plus 64: from a short stack ANS decodes latents biased away
  from q, which costs more than it saves (seen: 7% above the -ELBO). A link that cannot
  borrow - the first, at least: the stack is empty - codes the bucket holding q's mean
  with the prior, paid in full: a once-per-file cost of a few links' latents. One bit a
  link tells the decoder which links borrowed.
* Encoder and decoder must see bit-identical tables: both run the same networks on the
  same batches (the link's images for q, the link's bucket centres for p(x | z)) on the
  same kind of device with the same number of threads (in the header), then make
  the tables in float64. The pixel tables come from the likelihood's own ``log_prob``
  at every level (:func:`pixelzoo.codec.level_log_probs`), channel by channel for the
  colour mixture (R, then G given R, then B).

File layout: :mod:`pixelzoo.codec`'s 38-byte header with the magic ``PZB`` (classes 0),
then the ANS stack as little-endian 32-bit words.

NOTE: BB-ANS codes one image a link and seeds the first with random "clean" bits; here a
link is up to ``batch`` images (the networks run once per link, not once per image) and
the first links pay their latents in full instead of borrowing bits that would have to
be sent anyway. Both change only the once-per-file constant.
"""

from __future__ import annotations

import math

import constriction
import numpy as np
import torch
from tqdm.auto import tqdm

from pixelzoo.errors import InputError

MAGIC = b"PZB"
# Buckets per latent dimension: 2**12, equal mass under N(0, 1). Part of the format.
LATENT_BITS = 12
# Images a link (both ends use the header's value).
BATCH = 16


def codes_with_bits_back(model) -> bool:
    """Whether ``model`` is coded by bits back (a VAE: latent codes, a per-pixel decoder)."""
    from pixelzoo.models.vae import VAE

    return isinstance(model, VAE)


def _buckets(device) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges ``[K + 1]`` (from -inf to inf) and centres ``[K]`` of the prior's buckets, float64."""
    k = 2**LATENT_BITS
    grid = torch.arange(k + 1, dtype=torch.float64, device=device) / k
    edges = torch.special.ndtri(grid)
    centres = torch.special.ndtri((torch.arange(k, dtype=torch.float64, device=device) + 0.5) / k)
    return edges, centres


def _posterior_table(model, x: torch.Tensor, edges: torch.Tensor):
    """q's mass in every bucket ``[B * latent_dim, K]`` float64 (rows: image-major), and
    the bucket holding q's mean ``[B * latent_dim]``.

    ``x`` is copied into the standard strides first: a tensor can pass as contiguous with
    others (a one-channel image with the channel stride 1, as ``draw`` returns), and the
    convolutions then take their channels_last path, which rounds differently on some
    CPUs (seen on an AVX2 EPYC). The decoder's images have the standard strides, so the
    encoder's must too, or the tables differ and the file cannot be decoded."""
    mu, logvar = model.encode(x.clone(memory_format=torch.contiguous_format))
    mean_bucket = torch.bucketize(mu.double().reshape(-1), edges[1:-1], right=True)
    mu = mu.double().reshape(-1, 1)
    sigma = torch.exp(0.5 * logvar.double()).reshape(-1, 1)
    t = (edges[None, :] - mu) / sigma  # [B * D, K + 1]
    lower, upper = t[:, :-1], t[:, 1:]
    # Above the mean, differences of the upper tail keep their precision.
    right = lower > 0
    mass = torch.where(
        right,
        torch.special.ndtr(-lower) - torch.special.ndtr(-upper),
        torch.special.ndtr(upper) - torch.special.ndtr(lower),
    )
    return mass.clamp_min(0.0), mean_bucket


def _decoder_params(model, z: torch.Tensor) -> torch.Tensor:
    """The decoder's likelihood parameters for latents ``z``, a row a pixel: ``[B * H * W, P]``."""
    params = model.decode(z)  # [B, P, H, W]
    return params.float().permute(0, 2, 3, 1).reshape(-1, params.shape[1])


def _pixel_table(model, params: torch.Tensor, x: torch.Tensor, channel: int) -> torch.Tensor:
    """log p(x_c | z, earlier channels of the pixel) at every level: ``[B * H * W, levels]``.

    Channels from ``channel`` on are zeroed first, so that the encoder (which knows them)
    and the decoder (which does not yet) hand the likelihood the same numbers.
    """
    from pixelzoo.codec import level_log_probs

    pixels = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]).clone()
    pixels[:, channel:] = 0
    return level_log_probs(model.likelihood, params, pixels, channel).cpu()


# A link after k images holds at most k / GROWTH images: it borrows up to about
# latent_dim x LATENT_BITS bits an image (all of them for a latent q leaves at the prior)
# from a stack that grew by each earlier image's code, which can be several times less.
GROWTH = 8


def links(n: int, batch: int) -> list[tuple[int, int]]:
    """``(start, count)`` of each link: single images at first, then growing by 1/GROWTH of
    the images so far up to ``batch``, so that the stack holds the bits a link borrows."""
    out, k = [], 0
    while k < n:
        m = max(1, min(batch, k // GROWTH, n - k))
        out.append((k, m))
        k += m
    return out


def _can_borrow(coder, q: np.ndarray) -> bool:
    """Whether the stack holds comfortably more bits than decoding z with ``q`` takes (its
    entropy): from a short stack ANS would decode latents biased away from q."""
    p = q / q.sum(1, keepdims=True)
    entropy = float(-(p * np.log2(np.where(p > 0, p, 1.0))).sum())
    return coder.num_bits() >= 2 * entropy + 64


def _subpixels(x: torch.Tensor, channel: int) -> np.ndarray:
    return x[:, channel].reshape(-1).to(torch.int32).cpu().numpy()


def _log2_probs(table: np.ndarray, symbols: np.ndarray) -> float:
    """Sum of -log2 of the chosen symbols' (normalised) probabilities, each at least the
    coder's smallest share, 2^-24 (a bucket whose float mass underflows to 0 is still coded)."""
    chosen = table[np.arange(len(symbols)), symbols] / table.sum(1)
    return float(-np.log2(np.maximum(chosen, 2.0**-24)).sum())


def _bits(log_table: torch.Tensor, symbols: np.ndarray) -> float:
    """Sum of -log2 p of the chosen levels, from a table of natural log-probabilities."""
    index = torch.from_numpy(symbols.astype(np.int64))[:, None]
    return float(-log_table.gather(1, index).sum()) / math.log(2.0)


class _Link:
    """What both ends share to code a link: the coder's models and the buckets' centres."""

    def __init__(self, model, centres):
        self.model, self.centres = model, centres
        self.family = constriction.stream.model.Categorical(perfect=False)
        self.prior = constriction.stream.model.Uniform(2**LATENT_BITS)
        self.flag = constriction.stream.model.Uniform(2)

    def z(self, buckets: np.ndarray, m: int) -> torch.Tensor:
        index = torch.from_numpy(buckets.astype(np.int64)).to(self.centres.device)
        return self.centres[index].reshape(m, -1).to(self.model.dtype)


def encode(model, x: torch.Tensor, cond=None, *, progress: bool = False, batch: int = BATCH):
    """Compress images ``x [N, C, H, W]`` (levels) with a VAE by bits back: :class:`~pixelzoo.codec.Encoded`.

    ``ideal_bits`` is the sum over images of ``-log2 p(x | z) - log2 p(z) + log2 q(z | x)``
    at the latent buckets the stream chose (links that did not borrow without the ``log2 q``
    refund), plus a flag bit a link, under the coder's float tables: the length the file
    approaches.
    """
    from pixelzoo import codec

    if cond is not None:
        raise InputError(f"{model.registry_name} is not conditional: give no labels")
    codec.check_request(model, x, batch)
    n = len(x)
    threads = codec.checked_threads()
    device = codec.checked_device(model)
    coder = constriction.stream.stack.AnsCoder()
    edges, centres = _buckets(model.device)
    link = _Link(model, centres)
    channels = model.image_shape[0]
    ideal = 0.0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for k, m in tqdm(links(n, batch), desc="encoding", disable=not progress):
                part = x[k : k + m].long().to(model.device)
                q, mean_bucket = _posterior_table(model, part, edges)
                q_np = q.cpu().numpy()
                borrow = _can_borrow(coder, q_np)
                if borrow:  # 1. borrow: decode z from the stack with q(z | x)
                    buckets = np.asarray(coder.decode(link.family, q_np), dtype=np.int32)
                    ideal -= _log2_probs(q_np, buckets)
                else:  # too few bits to borrow yet: the bucket of q's mean, paid in full
                    buckets = mean_bucket.cpu().numpy().astype(np.int32)
                params = _decoder_params(model, link.z(buckets, m))
                # 2. x with p(x | z), pushed last channel first so that the decoder pops R first
                for c in reversed(range(channels)):
                    log_table = _pixel_table(model, params, part, c)
                    symbols = _subpixels(part, c)
                    coder.encode_reverse(symbols, link.family, log_table.exp().numpy())
                    ideal += _bits(log_table, symbols)
                # 3. z with the prior: LATENT_BITS bits a dimension
                coder.encode_reverse(buckets, link.prior)
                ideal += LATENT_BITS * len(buckets)
                # whether this link borrowed, for the decoder: one bit a link
                coder.encode_reverse(np.array([int(borrow)], np.int32), link.flag)
                ideal += 1.0
    finally:
        model.train(was_training)
    words = np.asarray(coder.get_compressed(), dtype=np.uint32).astype("<u4").tobytes()
    head = codec.pack_header(
        MAGIC, model, n, batch, threads, device, len(words), codec.crc(x, None)
    )
    return codec.Encoded(
        data=head + words, count=n, dims=model.dims, ideal_bits=ideal,
        ideal_label="the bits-back ideal, about the -ELBO",
    )  # fmt: skip


def decode(model, data: bytes, *, progress: bool = False, source: str = "the file"):
    """The images ``[N, C, H, W]`` (int64) that :func:`encode` compressed, and ``None``."""
    from pixelzoo import codec

    header, code = codec.read_header(data, source, magic=MAGIC)
    codec.check_header_model(header, model, source)
    if len(code) % 4:
        raise codec.CodecError(
            f"{source} is corrupt: its code is not a whole number of 32-bit words"
        )
    words = np.frombuffer(code, dtype="<u4").astype(np.uint32)
    try:
        coder = constriction.stream.stack.AnsCoder(words)
    except (ValueError, RuntimeError, AssertionError) as e:
        raise codec.CodecError(f"{source} is corrupt: its code cannot be read ({e})") from None
    n, shape, channels = header["count"], header["shape"], header["channels"]
    edges, centres = _buckets(model.device)
    link = _Link(model, centres)
    x = torch.zeros(n, *shape, dtype=torch.long, device=model.device)
    parts = links(n, header["batch"])
    was_training = model.training
    model.eval()
    try:
        with codec.threads(header["threads"]), torch.no_grad():
            for number in tqdm(reversed(range(len(parts))), total=len(parts), desc="decoding",
                               disable=not progress):  # fmt: skip
                k, m = parts[number]
                part = x[k : k + m]
                try:
                    borrowed = int(coder.decode(link.flag, 1)[0])
                    # 3. z with the prior
                    buckets = np.asarray(
                        coder.decode(link.prior, m * model.latent_dim), dtype=np.int32
                    )
                    params = _decoder_params(model, link.z(buckets, m))
                    # 2. x with p(x | z), R then G then B
                    for c in range(channels):
                        table = _pixel_table(model, params, part, c).exp().numpy()
                        got = np.asarray(coder.decode(link.family, table), dtype=np.int64)
                        part[:, c] = torch.from_numpy(got).reshape(m, *shape[1:]).to(x.device)
                    # 1. give back the borrowed bits: z with q(z | x)
                    if borrowed:
                        q_np = _posterior_table(model, part, edges)[0].cpu().numpy()
                        coder.encode_reverse(buckets, link.family, q_np)
                except (ValueError, RuntimeError, AssertionError) as e:
                    raise codec.CodecError(
                        f"{source} is corrupt: its code cannot be decoded ({e})"
                    ) from None
    finally:
        model.train(was_training)
    if not coder.is_empty():
        raise codec.CodecError(
            f"{source} is corrupt: {coder.num_bits():,} bits are left over after its {n:,} images"
        )
    x = x.cpu()
    codec.check_crc(x, None, header, source)
    return x, None


def expected_bits(model, x: torch.Tensor, samples: int = 64, generator=None) -> torch.Tensor:
    """The negative ELBO in bits per image ``[N]`` (the mean of ``samples`` one-sample ELBOs):
    the mean length of an image's bits-back code, before discretizing the latents."""
    with torch.no_grad():
        total = sum(model.elbo(x, generator=generator).double() for _ in range(samples))
        return -total.cpu() / (samples * math.log(2.0))
