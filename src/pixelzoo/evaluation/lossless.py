"""The lossless codecs everyone uses, on the same images as pixelzoo's code: PNG, WebP, JPEG-XL.

Each image set is coded two ways: one file per image (what a user storing images pays,
headers included; also counted without the container's fixed header where the format
lets it be separated exactly), and all images tiled into one large image (where the
headers vanish and the codec can exploit what the images share, as pixelzoo's one file
for many images does). Every file is decoded again and compared pixel for pixel.

Each codec gets the images in its most favourable lossless form: the levels themselves as
the 8-bit values (0..K-1, a small alphabet), and binary images as 1-bit PNG; WebP and
JPEG-XL take 8-bit grey or RGB (WebP stores grey as RGB). Settings: PNG at zlib level 9
with Pillow's ``optimize``; WebP lossless at method 6 (its slowest, smallest); JPEG-XL
lossless at effort 9 (``imagecodecs``, the reference libjxl), as a bare codestream.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import torch
from PIL import Image

from pixelzoo.data.images import make_grid
from pixelzoo.errors import InputError

CODECS = ("png", "webp", "jpegxl")


def _pil_image(arr: np.ndarray, levels: int) -> Image.Image:
    """``[H, W, C]`` uint8 levels as a Pillow image (1-bit for binary grey)."""
    if arr.shape[-1] == 1:
        if levels == 2:
            return Image.fromarray(arr[..., 0] > 0)  # mode "1"
        return Image.fromarray(arr[..., 0])
    return Image.fromarray(arr)


def _png_header_bytes(data: bytes) -> int:
    """Signature, IHDR, IEND and the 12-byte frame of every chunk: all of a PNG but its data."""
    header, pos = 8, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        header += 12 + (length if kind != b"IDAT" else 0)
        pos += 12 + length
    return header


def encode_one(arr: np.ndarray, levels: int, codec: str) -> tuple[bytes, int]:
    """One image ``[H, W, C]`` (uint8 levels) -> (file bytes, bytes of fixed header)."""
    if codec == "png":
        buf = io.BytesIO()
        _pil_image(arr, levels).save(buf, format="PNG", optimize=True, compress_level=9)
        data = buf.getvalue()
        return data, _png_header_bytes(data)
    if codec == "webp":
        import imagecodecs

        rgb = np.repeat(arr, 3, axis=-1) if arr.shape[-1] == 1 else arr
        data = imagecodecs.webp_encode(rgb, lossless=True, method=6)
        if data[12:16] != b"VP8L":
            return data, 0  # an extended file: its header is not separated
        return data, 12 + 8 + 5  # RIFF/WEBP, the VP8L chunk's frame, the bitstream's header
    if codec == "jpegxl":
        import imagecodecs

        data = imagecodecs.jpegxl_encode(arr if arr.shape[-1] > 1 else arr[..., 0],
                                         lossless=True, effort=9)  # fmt: skip
        return data, 0  # the codestream's header is entropy-coded with the image: not separated
    raise InputError(f"unknown codec {codec!r}; valid codecs: {', '.join(CODECS)}")


def decode_one(data: bytes, codec: str, channels: int) -> np.ndarray:
    """A file of :func:`encode_one` back to ``[H, W, C]`` uint8 levels."""
    if codec == "png":
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("L") if im.mode == "1" else im)
            arr = (arr > 0).astype(np.uint8) if im.mode == "1" else arr
    else:
        import imagecodecs

        arr = (imagecodecs.webp_decode if codec == "webp" else imagecodecs.jpegxl_decode)(data)
    arr = arr[..., None] if arr.ndim == 2 else arr
    return arr[..., :channels] if channels == 1 else arr


def available(codec: str) -> bool:
    """Whether this machine can run ``codec`` (WebP and JPEG-XL need ``imagecodecs``)."""
    if codec == "png":
        return True
    try:
        import imagecodecs
    except ImportError:
        return False
    return bool((imagecodecs.WEBP if codec == "webp" else imagecodecs.JPEGXL).available)


def measure(images: torch.Tensor, levels: int, codecs=CODECS) -> dict:
    """Bits/dim of each codec on integer images ``[N, C, H, W]``, every file round-tripped.

    Returns, per codec: ``per_image`` (files, headers included), ``per_image_no_header``
    (where the header can be separated; else None), ``tiled`` (one image of all) and the
    image counts; a codec whose file does not decode to the same pixels raises.
    """
    if images.dim() != 4 or levels > 256:
        raise InputError(
            "lossless baselines take integer images [N, C, H, W] of at most 256 levels"
        )
    arr = np.ascontiguousarray(images.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy())
    n, h, w, c = arr.shape
    dims = n * h * w * c
    out = {}
    for codec in codecs:
        if not available(codec):
            out[codec] = None
            continue
        total = header = 0
        for img in arr:
            data, head = encode_one(img, levels, codec)
            if not np.array_equal(decode_one(data, codec, c), img):
                raise AssertionError(f"{codec} did not decode to the same pixels")
            total += len(data)
            header += head
        big = make_grid(images, 256, pad=0, fill=0)  # 256: the levels' values as they are
        data, _ = encode_one(big, levels, codec)
        if not np.array_equal(decode_one(data, codec, c), big):
            raise AssertionError(f"{codec} did not decode the tiled image to the same pixels")
        out[codec] = {
            "per_image": 8 * total / dims,
            "per_image_no_header": 8 * (total - header) / dims if header else None,
            "tiled": 8 * len(data) / dims,
            "tiled_padding_pixels": big.shape[0] * big.shape[1] - n * h * w,
        }
    return out
