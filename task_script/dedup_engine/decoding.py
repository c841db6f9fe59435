"""Bytes to pixels: format sniffing, size limits before allocation, and one canonical pixel array per image.

The canonical array is what "the same pixels" means: a PNG and a BMP of the same picture give equal arrays, and
an RGBA export whose channels are equal and alpha opaque (the CytPix's) equals the 8-bit grey image it shows.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import pyspng
from PIL import Image, UnidentifiedImageError

from .errors import CorruptImageError, EmptyFileError, ImageTooLargeError, NotAnImageError

try:  # libdeflate, for the PNG fast path's inflate (see _stored_png)
    import deflate as libdeflate
except ImportError:  # pragma: no cover - the requirements install it; without it libspng inflates, as it did before
    libdeflate = None

IMAGE_SUFFIXES = frozenset({".bmp", ".png", ".tif", ".tiff", ".jpg", ".jpeg"})

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\xff\xd8\xff", "JPEG"),
)


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: canonical pixels plus the grey view every fingerprint is computed from."""

    format: str
    mode: str
    width: int
    height: int
    pixels: np.ndarray  # canonical: uint8 (h,w) | uint8 (h,w,3 RGB) | uint8 (h,w,4 RGBA) | uint16 (h,w)
    grey: np.ndarray  # uint8 (h,w): luma as Pillow's convert("L") computes it; 16-bit stretched to 0..255


def sniff_format(data: bytes) -> str | None:
    """The image format named by the file's first bytes, or None."""
    for signature, name in _SIGNATURES:
        if data.startswith(signature):
            return name
    return None


def declared_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height as the PNG or BMP header states them, read without decoding anything."""
    if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if fmt == "BMP" and len(data) >= 26 and int.from_bytes(data[14:18], "little") >= 40:
        return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(
            int.from_bytes(data[22:26], "little", signed=True)
        )
    return None


def decode(data: bytes, *, path: str, max_pixels: int) -> DecodedImage:
    """Decode ``data`` or raise an ImageError naming ``path`` and the reason. Never decodes a partial image."""
    if not data:
        raise EmptyFileError("empty file (0 bytes); nothing to decode", path=path)
    fmt = sniff_format(data)
    if fmt is None:
        raise NotAnImageError(
            "not a supported image: the content is not BMP, PNG, TIFF or JPEG (bad signature)", path=path
        )
    declared = declared_size(data, fmt)
    if declared is not None and declared[0] * declared[1] > max_pixels:
        raise ImageTooLargeError(
            f"image too large: the {fmt} header declares {declared[0]}x{declared[1]} = "
            f"{declared[0] * declared[1]:,} pixels, over the limit of {max_pixels:,}; refused before decoding "
            "(if it is a real image, raise max_pixels: --max-pixels on the command line)",
            path=path,
        )
    mode = header_mode(data, fmt)
    if mode is not None and declared is not None:  # a plain 8-bit PNG or BMP: no need for Pillow's parser
        fast = _decode_fast(data, fmt, mode, *declared)
        if fast is not None:
            return DecodedImage(fmt, mode, declared[0], declared[1], *fast)
    try:
        with warnings.catch_warnings():  # our own limit below is checked on the header, before any decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
        width, height = image.size
        if width <= 0 or height <= 0:
            raise CorruptImageError(f"{fmt} header declares an empty image ({width}x{height})", path=path)
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"image too large: {width}x{height} = {width * height:,} pixels exceeds the limit of "
                f"{max_pixels:,} (refused before decoding; if it is a real image, raise max_pixels: --max-pixels on "
                "the command line)",
                path=path,
            )
        fast = None if "transparency" in image.info else _decode_fast(data, fmt, image.mode, width, height)
        if fast is not None:
            pixels, grey = fast
            return DecodedImage(fmt, image.mode, width, height, pixels, grey)
        image.load()
    except ImageTooLargeError:
        raise
    except Image.DecompressionBombError as exc:  # header past Pillow's hard limit, e.g. 100000x100000
        raise ImageTooLargeError(f"image too large: {exc}", path=path) from exc
    except UnidentifiedImageError as exc:
        # Pillow's message names the in-memory buffer (an address that differs on every run): say it plainly
        raise NotAnImageError(
            f"not a readable {fmt} file: it starts like one, but Pillow cannot identify the rest (corrupt header?)",
            path=path,
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error, MemoryError) as exc:
        reason = "truncated" if "truncated" in str(exc) else "corrupt"
        raise CorruptImageError(f"{reason} {fmt} file: {exc}", path=path) from exc
    try:
        pixels, grey = _canonical(image)
    except (OSError, ValueError) as exc:
        raise CorruptImageError(f"cannot convert {fmt} mode {image.mode}: {exc}", path=path) from exc
    return DecodedImage(fmt, image.mode, width, height, pixels, grey)


_OPENCV_MODES = {"L": 1, "RGB": 3, "RGBA": 4}
_PNG_MODES = {0: "L", 2: "RGB", 6: "RGBA"}  # IHDR colour types, at 8 bits per sample
_PNG_CHUNKS_READ = 64  # chunks looked through for a tRNS before the first IDAT


def header_mode(data: bytes, fmt: str) -> str | None:
    """Pillow's mode for the plain images the fast decoders take (8-bit grey, RGB or RGBA PNG without a tRNS
    chunk; uncompressed 24-bit BMP, or 8-bit BMP whose palette is the grey ramp), read from the header alone;
    None for anything else, which Pillow then opens (its parser costs as much as decoding a small BMP)."""
    if fmt == "PNG":
        if len(data) < 33 or data[12:16] != b"IHDR" or data[24] != 8 or data[25] not in _PNG_MODES:
            return None
        offset = 8
        for _ in range(_PNG_CHUNKS_READ):
            kind = data[offset + 4 : offset + 8]
            if kind == b"IDAT":
                return _PNG_MODES[data[25]]
            if kind == b"tRNS" or len(kind) < 4:
                return None
            offset += 12 + int.from_bytes(data[offset : offset + 4], "big")
        return None
    if fmt == "BMP" and len(data) >= 54:
        header = int.from_bytes(data[14:18], "little")
        bits, compression = int.from_bytes(data[28:30], "little"), int.from_bytes(data[30:34], "little")
        if header < 40 or compression != 0:
            return None
        if bits == 24:
            return "RGB"
        colours = int.from_bytes(data[46:50], "little")
        palette = data[14 + header : 14 + header + 1024]
        if bits == 8 and colours in (0, 256) and palette == _GREY_RAMP:
            return "L"  # as Pillow reads it: every palette entry i is (i, i, i)
    return None


_GREY_RAMP = bytes(v for i in range(256) for v in (i, i, i, 0))


def _decode_fast(data: bytes, fmt: str, mode: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
    if fmt == "BMP":
        return _decode_with_opencv(data, mode, width, height)
    if fmt == "PNG":
        return _decode_with_spng(data, mode, width, height)
    return None


def _decode_with_opencv(data: bytes, mode: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
    """OpenCV decodes BMP to the same pixels as Pillow, about five times faster, straight into an array.
    (For PNG it is no faster, and libpng prints its complaints about a corrupt file to stderr.) None when it
    does not apply or fails: Pillow then decodes, or names the error."""
    channels = _OPENCV_MODES.get(mode)
    if channels is None or not _complete(data):
        return None  # an incomplete file goes to Pillow, which names what is wrong
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.dtype != np.uint8 or array.shape[:2] != (height, width):
        return None
    if (1 if array.ndim == 2 else array.shape[2]) != channels:
        return None
    return (array, array) if channels == 1 else _from_colour(array, bgr=True)


def _decode_with_spng(data: bytes, mode: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
    """libspng (pyspng) decodes 8-bit grey, RGB and RGBA PNGs to the same pixels as Pillow, in about four fifths
    of the time (the CytPix's RGBA exports are half of a run), straight into an array. Anything else (palettes,
    16 bits, transparency chunks: the caller sends those to Pillow), and any file it cannot read, goes to Pillow,
    which decodes or names the error. A plainly laid out file is first inflated by libdeflate (``_stored_png``);
    libspng then reads the same image data stored uncompressed."""
    channels = _OPENCV_MODES.get(mode)
    if channels is None or len(data) < 25 or data[24] != 8:
        return None
    stored = _stored_png(data, channels, width, height)
    array = _spng(stored) if stored is not None else None
    if array is None:
        array = _spng(data)  # libspng's own inflate, as before the stored copy
        if array is None:
            return None
    if array.dtype != np.uint8 or array.shape[:2] != (height, width) or (
            1 if array.ndim == 2 else array.shape[2]) != channels:
        return None
    return (array, array) if channels == 1 else _from_colour(array, bgr=False)


def _spng(data: bytes) -> np.ndarray | None:
    try:
        return pyspng.load(data)
    except Exception:  # noqa: BLE001 - whatever libspng objects to, Pillow gives the reason
        return None


_PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels to IHDR colour type, at 8 bits per sample
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # an IEND chunk is always these 12 bytes (its CRC included)
_PNG_MAX_CHUNK = 2**31 - 1  # the PNG format's (and libspng's) longest chunk
_STORED_BLOCK = 65_535  # the most one stored deflate block holds
# Rows stored uncompressed cost memory: the copy, libspng's copy of it and the pixels make three times the rows
# where libspng alone held them once. Larger images (2,000 x 2,000 RGBA is 16 MB) keep libspng's own inflate.
_STORED_MAX = 16 * 2**20


def _stored_png(data: bytes, channels: int, width: int, height: int) -> bytes | None:
    """The same PNG with its image data inflated by libdeflate and stored again uncompressed, or None for
    anything unusual (then libspng reads the original, as before).

    libspng inflates with plain zlib: 0.72 of its 0.83 ms per 248-267 px RGBA frame of the 5,000 set. libdeflate
    inflates the same stream in 0.28 ms, and libspng then only copies the stored blocks and unfilters (0.12 ms):
    decode() went from 1.10 to 0.74 ms per PNG of that set. (ISA-L inflates in 0.35 ms, 0.11 ms more per decode,
    and accepts a 64 KiB window and incomplete Huffman codes, which zlib refuses.) libdeflate writes into a buffer
    of the size IHDR implies and fails on a stream that inflates to more: a bomb allocates nothing more.

    Exactness: the copy keeps the original signature and IHDR, and its filtered rows are the bytes zlib inflates
    from the original (libdeflate, zlib and libspng's unfiltering of equal bytes give equal pixels). Only a file
    laid out as writers lay it out is taken (``_idat_stream``): every CRC right, which libspng, as pyspng sets it
    up, does not check, so a damaged file is never decoded by this path. libdeflate also checks the stream's
    Adler-32 (libspng does not) and rejects a stream that does not inflate to exactly the rows IHDR implies;
    libspng would have read only those rows. Known difference from zlib: libdeflate accepts a dynamic block
    header declaring up to 288 literal/length or 32 distance codes where zlib allows 286 and 30, when the extra
    codes are never used; no encoder writes that, and the CRCs must still be right."""
    if libdeflate is None:
        return None
    stream = _idat_stream(data, channels, width, height)
    size = height * (1 + width * channels)  # each row: its filter byte, then the samples
    if stream is None or size > _STORED_MAX:
        return None
    try:
        raw = libdeflate.zlib_decompress(stream, size)
    except Exception:  # noqa: BLE001 - a stream libdeflate refuses goes to libspng as it is, as before
        return None
    if len(raw) != size:
        return None
    return _with_stored_idat(data[:33], raw)


def _idat_stream(data: bytes, channels: int, width: int, height: int) -> bytes | memoryview | None:
    """The zlib stream of a PNG laid out as Pillow and most writers lay one out: an 8-bit non-interlaced IHDR
    of the size and colour type expected, then IDAT chunks only, then IEND at the very end, every chunk's CRC
    right (libdeflate's CRC-32: 0.002 ms per frame). None for anything else, e.g. an ancillary chunk, which
    libspng might read differently, or a damaged CRC."""
    header = struct.pack(">I4sIIBBBBB", 13, b"IHDR", width, height, 8, _PNG_COLOUR_TYPES[channels], 0, 0, 0)
    if len(data) < 45 or data[8:29] != header or not _crc_right(data, 8):
        return None
    view = memoryview(data)
    parts = []
    offset = 33
    while data[offset + 4 : offset + 8] == b"IDAT":
        length = int.from_bytes(data[offset : offset + 4], "big")
        if length > _PNG_MAX_CHUNK or offset + 12 + length > len(data) or not _crc_right(data, offset):
            return None
        parts.append(view[offset + 8 : offset + 8 + length])
        offset += 12 + length
    if not parts or data[offset:] != _PNG_IEND:
        return None
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _crc_right(data: bytes, offset: int) -> bool:
    """Whether the CRC of the chunk at ``offset`` (of type and data) is the one stored after it."""
    end = offset + 8 + int.from_bytes(data[offset : offset + 4], "big")
    return libdeflate.crc32(memoryview(data)[offset + 4 : end]) == int.from_bytes(data[end : end + 4], "big")


def _with_stored_idat(head: bytes, raw: bytearray) -> bytes:
    """``head`` (signature and IHDR), then one IDAT chunk holding ``raw`` as a zlib stream of stored blocks,
    with its Adler-32 and CRC right, then IEND: one join, 0.04 ms per frame with libdeflate's sums (zlib's
    own stored compression of the same rows costs 0.11-0.21 ms). libspng as pyspng sets it up checks neither
    sum, but a valid file costs little and stays valid."""
    size = len(raw)
    length = 2 + 5 * -(-size // _STORED_BLOCK) + size + 4  # zlib header, block headers, rows, Adler-32
    view = memoryview(raw)
    parts = [length.to_bytes(4, "big"), b"IDAT\x78\x01"]  # 0x78 0x01: deflate, 32 KiB window, no dictionary
    for start in range(0, size, _STORED_BLOCK):
        block = view[start : start + _STORED_BLOCK]
        parts += [struct.pack("<BHH", start + _STORED_BLOCK >= size, len(block), len(block) ^ 0xFFFF), block]
    parts.append(libdeflate.adler32(raw).to_bytes(4, "big"))
    crc = 0
    for part in parts[1:]:
        crc = libdeflate.crc32(part, crc)
    return b"".join([head, *parts, crc.to_bytes(4, "big"), _PNG_IEND])


_GREY_EXPANDED = {3: cv2.COLOR_GRAY2RGB, 4: cv2.COLOR_GRAY2RGBA}  # one plane to (v, v, v[, 255])
_TO_RGB = {(3, True): cv2.COLOR_BGR2RGB, (4, True): cv2.COLOR_BGRA2RGB, (4, False): cv2.COLOR_RGBA2RGB}


def _from_colour(array: np.ndarray, *, bgr: bool) -> tuple[np.ndarray, np.ndarray]:
    """The canonical pixels and grey view of a colour image (h, w, 3 or 4: RGB[A] from libspng, BGR[A] from
    OpenCV), as ``_canonical`` makes them from Pillow's.

    Most frames are grey and opaque (the CytPix's RGBA exports): one comparison of the array with its first
    plane expanded to (v, v, v, 255) tells it, and that plane is the answer. Per 248-267 px RGBA frame of the
    5,000 set, just decoded: 0.05 ms, where cv2.split and three countNonZero checks took 0.14-0.18 ms. (Also
    measured: a uint32 view against R * 0x010101 + 0xFF000000 in numpy 0.05 ms, RGBA only; the same by a table
    look-up 0.18 ms; np.array_equal or absdiff and countNonZero in place of cv2.norm 0.11-0.12 ms.)"""
    channels = array.shape[2]
    first = cv2.extractChannel(array, 0)
    if cv2.norm(array, cv2.cvtColor(first, _GREY_EXPANDED[channels]), cv2.NORM_INF) == 0:
        return first, first
    opaque = channels == 3 or cv2.countNonZero(cv2.bitwise_not(cv2.extractChannel(array, 3))) == 0
    if opaque:
        pixels = cv2.cvtColor(array, _TO_RGB[channels, bgr]) if (channels, bgr) in _TO_RGB else array
    else:
        pixels = cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA) if bgr else array
    return pixels, _luma(pixels)


def _complete(data: bytes) -> bool:
    """A BMP holds at least the size its header declares."""
    return len(data) >= 6 and len(data) >= int.from_bytes(data[2:6], "little")


def _canonical(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        raw = np.asarray(image)
        if raw.dtype != np.uint16:
            raw = np.clip(raw, 0, 65535).astype(np.uint16)
        return raw, _stretch(raw)
    if mode == "1":
        image = image.convert("L")
    elif mode in ("P", "PA", "LA"):
        image = image.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    arr = np.asarray(image)
    if arr.ndim == 2:
        return arr, arr
    if arr.shape[2] == 4 and bool((arr[..., 3] == 255).all()):
        arr = arr[..., :3]
    rgb = arr[..., :3]
    if bool((rgb[..., 0] == rgb[..., 1]).all()) and bool((rgb[..., 1] == rgb[..., 2]).all()) and arr.shape[2] == 3:
        grey = np.ascontiguousarray(rgb[..., 0])
        return grey, grey
    return np.ascontiguousarray(arr), _luma(rgb)


def _luma(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma exactly as Pillow's convert("L") rounds it (16-bit fixed point)."""
    r = rgb[..., 0].astype(np.uint32)
    g = rgb[..., 1].astype(np.uint32)
    b = rgb[..., 2].astype(np.uint32)
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def _stretch(raw: np.ndarray) -> np.ndarray:
    """16-bit to 8-bit for fingerprints: a linear min-max stretch (documented down-conversion)."""
    low = int(raw.min())
    high = int(raw.max())
    if high == low:
        return np.zeros(raw.shape, dtype=np.uint8)
    scaled = (raw.astype(np.float32) - low) * (255.0 / (high - low))
    return np.rint(scaled).astype(np.uint8)
