from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st
from PIL import Image

from dedup_engine import DedupParams, dedup, decoding
from dedup_engine.decoding import decode
from dedup_engine.errors import CorruptImageError, EmptyFileError, ImageTooLargeError, NotAnImageError

EXPECTED_ERRORS = {
    "truncated.png": (CorruptImageError, "truncated"),
    "truncated.bmp": (CorruptImageError, "truncated"),
    "zero_byte.bmp": (EmptyFileError, "empty file"),
    "text_file.png": (NotAnImageError, "bad signature"),
    "huge_dimensions_header.png": (ImageTooLargeError, "100000x100000"),
    "decompression_bomb_20000x20000.png": (ImageTooLargeError, "20000x20000"),
    "bad_crc.png": (CorruptImageError, "corrupt"),
}
PROCESSED = {"gray16.png": (256, 256), "rgba.png": (160, 300), "palette.png": (160, 300), "onebit.bmp": (102, 102),
             "bmp_data_named.png": (128, 128)}


def test_manifest_covers_every_case(bad_inputs: Path) -> None:
    listed = {entry["file"] for entry in json.loads((bad_inputs / "manifest.json").read_text())["files"]}
    assert listed == set(EXPECTED_ERRORS) | set(PROCESSED)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_broken_files_raise_a_named_error(bad_inputs: Path, name: str) -> None:
    kind, words = EXPECTED_ERRORS[name]
    with pytest.raises(kind) as info:
        decode((bad_inputs / name).read_bytes(), path=name, max_pixels=DedupParams().max_pixels)
    assert words in str(info.value) and name in str(info.value)


@pytest.mark.parametrize("name", sorted(PROCESSED))
def test_unusual_valid_images_are_processed(bad_inputs: Path, name: str) -> None:
    image = decode((bad_inputs / name).read_bytes(), path=name, max_pixels=DedupParams().max_pixels)
    assert (image.width, image.height) == PROCESSED[name]
    assert image.grey.dtype == np.uint8 and image.grey.shape == (image.height, image.width)
    assert image.grey.std() > 0


def test_every_bad_input_gets_its_outcome_and_stays_untouched(bad_inputs: Path, tmp_path: Path) -> None:
    manifest = json.loads((bad_inputs / "manifest.json").read_text())
    sources = [(e["file"], (bad_inputs / e["file"]).read_bytes()) for e in manifest["files"]]
    result = dedup("bad", sources, DedupParams(), workers=2)
    by_path = result.by_path()
    assert len(result.files) == len(sources)
    for entry in manifest["files"]:
        outcome = by_path[entry["file"]]
        if entry["file"] in EXPECTED_ERRORS:
            assert outcome.status == "error" and outcome.error, entry["file"]
        else:
            assert outcome.status == "unique", (entry["file"], outcome)
        assert hashlib.sha256((bad_inputs / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
    assert result.counts.duplicate == 0


def test_bomb_is_refused_before_allocating(bad_inputs: Path) -> None:
    data = (bad_inputs / "huge_dimensions_header.png").read_bytes()
    with pytest.raises(ImageTooLargeError, match="refused before decoding"):
        decode(data, path="huge.png", max_pixels=10_000)


def _encode(array: np.ndarray, fmt: str, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(buffer, fmt)
    return buffer.getvalue()


def test_png_and_bmp_of_the_same_pixels_decode_equal() -> None:
    grey = np.random.default_rng(1).integers(0, 255, (37, 41), dtype=np.uint8)
    rgba = np.dstack([grey, grey, grey, np.full_like(grey, 255)])
    variants = [_encode(grey, "PNG"), _encode(grey, "BMP"), _encode(rgba, "PNG"), _encode(grey, "BMP", "RGB")]
    decoded = [decode(v, path="x", max_pixels=10**6).pixels for v in variants]
    for pixels in decoded[1:]:
        assert pixels.shape == decoded[0].shape and np.array_equal(pixels, decoded[0])


def test_alpha_that_matters_is_kept_apart() -> None:
    grey = np.full((20, 20), 100, dtype=np.uint8)
    alpha = np.full_like(grey, 255)
    alpha[:5, :5] = 10
    pixels = decode(_encode(np.dstack([grey, grey, grey, alpha]), "PNG"), path="x", max_pixels=10**6).pixels
    assert pixels.shape == (20, 20, 4)


def test_sixteen_bit_keeps_full_range_in_pixels(bad_inputs: Path) -> None:
    image = decode((bad_inputs / "gray16.png").read_bytes(), path="g", max_pixels=10**6)
    assert image.pixels.dtype == np.uint16 and image.pixels.max() > 255
    assert image.grey.min() == 0 and image.grey.max() == 255


MODES = ["L", "RGB", "RGBA", "grey-RGBA", "grey-RGB", "opaque-RGBA", "grey-translucent-RGBA", "nearly-grey-RGB",
         "nearly-grey-RGBA"]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES), height=st.integers(1, 70),
       width=st.integers(1, 70), compress=st.integers(0, 9))
def test_libspng_decodes_to_the_same_pixels_as_pillow(seed: int, mode: str, height: int, width: int,
                                                       compress: int) -> None:
    """The fast PNG path (libspng) and Pillow's give one canonical image: same pixels, same grey view."""
    buffer = io.BytesIO()
    Image.fromarray(_random_image(seed, mode, height, width)).save(buffer, "PNG", compress_level=compress)
    data = buffer.getvalue()
    fast = decode(data, path="a.png", max_pixels=10**6)
    image = Image.open(io.BytesIO(data))
    assert decoding.header_mode(data, "PNG") == image.mode == fast.mode  # the fast path was taken
    assert decoding._decode_with_spng(data, image.mode, width, height) is not None
    pixels, grey_view = decoding._canonical(image)
    assert fast.pixels.dtype == pixels.dtype and np.array_equal(fast.pixels, pixels)
    assert np.array_equal(fast.grey, grey_view)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES[1:]), height=st.integers(1, 40),
       width=st.integers(1, 40), bgr=st.booleans())
def test_colour_arrays_give_pillows_canonical_pixels(seed: int, mode: str, height: int, width: int,
                                                     bgr: bool) -> None:
    """_from_colour on an RGB[A] array (libspng's) or a BGR[A] one (OpenCV's; its BMP path meets few 4-channel
    files, so every case is also checked here) gives what _canonical gives for Pillow's image of it."""
    array = _random_image(seed, mode, height, width)
    pixels, grey = decoding._canonical(Image.fromarray(array))
    ordered = np.ascontiguousarray(array[..., [2, 1, 0, 3][: array.shape[2]]]) if bgr else array
    fast_pixels, fast_grey = decoding._from_colour(ordered, bgr=bgr)
    assert fast_pixels.dtype == pixels.dtype and fast_pixels.shape == pixels.shape
    assert np.array_equal(fast_pixels, pixels) and np.array_equal(fast_grey, grey)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["L", "RGB", "P-grey-shuffled", "P-colour", "1", "RGBA",
                                                             "grey-RGB", "grey-RGBA", "opaque-RGBA"]),
       height=st.integers(1, 70), width=st.integers(1, 70), top_down=st.booleans())
def test_bmp_header_mode_is_pillows_or_none(seed: int, kind: str, height: int, width: int, top_down: bool) -> None:
    """The header alone names the mode only where it is sure (8-bit grey ramp, 24-bit); anything else goes to
    Pillow's parser. Either way the decoded image is Pillow's."""
    from dedup_engine import decoding

    rng = np.random.default_rng(seed)
    if kind in ("L", "1"):
        image = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8)).convert(kind)
    elif kind.startswith("P"):
        image = Image.fromarray(rng.integers(0, 256, (height, width), dtype=np.uint8), "L").convert("P")
        ramp = list(range(256))
        if kind == "P-grey-shuffled":
            rng.shuffle(ramp)
            image.putpalette([v for i in ramp for v in (i, i, i)])
        else:
            image.putpalette(rng.integers(0, 256, 768).tolist())
    elif kind in ("RGB", "RGBA"):
        image = Image.fromarray(rng.integers(0, 256, (height, width, len(kind)), dtype=np.uint8), kind)
    else:
        image = Image.fromarray(_random_image(seed, kind, height, width))
    buffer = io.BytesIO()
    image.save(buffer, "BMP")
    data = bytearray(buffer.getvalue())
    if top_down:  # a negative height: rows stored top first
        data[22:26] = (-height).to_bytes(4, "little", signed=True)
        rows = len(data) - int.from_bytes(data[10:14], "little")
        stride = rows // height
        body = data[-rows:]
        data[-rows:] = b"".join(body[i * stride : (i + 1) * stride] for i in reversed(range(height)))
    data = bytes(data)
    with Image.open(io.BytesIO(data)) as reference:
        mode = decoding.header_mode(data, "BMP")
        assert mode in (None, reference.mode)
        if kind in ("L", "RGB"):
            assert mode == kind
        if kind.startswith("P") or kind == "1":
            assert mode is None
        reference.load()
        expected, expected_grey = decoding._canonical(reference)
    decoded = decode(data, path="a.bmp", max_pixels=10**6)
    assert decoded.mode == reference.mode
    assert np.array_equal(decoded.pixels, expected) and np.array_equal(decoded.grey, expected_grey)


# --- the PNG fast path's inflate: libdeflate, then libspng on the rows stored uncompressed ---

def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """A PNG's chunks as (type, data), in order."""
    chunks, offset = [], 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        chunks.append((data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return chunks


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(_chunk(kind, body) for kind, body in chunks)


def _resplit(data: bytes, cuts: list[float]) -> bytes:
    """The same PNG with its image data cut into IDAT chunks at the given fractions (an empty one where two cuts
    meet), every CRC right."""
    chunks = _chunks(data)
    stream = b"".join(body for kind, body in chunks if kind == b"IDAT")
    bounds = [0, *sorted(int(c * len(stream)) for c in cuts), len(stream)]
    idats = [(b"IDAT", stream[a:b]) for a, b in zip(bounds, bounds[1:])]
    return _png([chunks[0], *idats, (b"IEND", b"")])


def _random_image(seed: int, mode: str, height: int, width: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if mode == "L":
        return grey
    if mode == "grey-translucent-RGBA":
        return np.dstack([grey] * 3 + [rng.integers(0, 256, (height, width), dtype=np.uint8)])
    if mode.startswith(("grey-", "nearly-grey-")):
        array = np.dstack([grey] * 3 + ([np.full_like(grey, 255)] if mode.endswith("RGBA") else []))
        if mode.startswith("nearly-"):  # one sample, alpha included, off by one
            y, x, c = rng.integers(height), rng.integers(width), rng.integers(array.shape[2])
            array[y, x, c] = array[y, x, c] - 1 if array[y, x, c] else 1
        return array
    array = rng.integers(0, 256, (height, width, 4 if mode.endswith("RGBA") else len(mode)), dtype=np.uint8)
    array[: height // 2] //= 16  # half of it compressible: long matches as well as literals
    if mode == "opaque-RGBA":
        array[..., 3] = 255
    return array


def _old_outcome(data: bytes, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """decode() as it was before libdeflate: libspng inflates the original file."""
    with monkeypatch.context() as patched:
        patched.setattr(decoding, "libdeflate", None)
        return _outcome(data)


def _outcome(data: bytes) -> tuple:
    try:
        image = decode(data, path="a.png", max_pixels=10**7)
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return type(exc), str(exc)
    return image.mode, image.pixels.dtype, image.pixels.shape, image.pixels.tobytes(), image.grey.tobytes()


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(MODES), height=st.integers(1, 300),
       width=st.integers(1, 300), compress=st.integers(0, 9), cuts=st.lists(st.floats(0, 1), max_size=4))
@example(seed=1, mode="L", height=255, width=256, compress=0, cuts=[])  # rows of exactly one stored block: 65,535 B
@example(seed=2, mode="RGBA", height=255, width=64, compress=9, cuts=[0.5, 0.5])  # the same, an empty IDAT between
@example(seed=3, mode="L", height=256, width=255, compress=6, cuts=[])  # 65,536 bytes: a second block of one byte
@example(seed=4, mode="RGB", height=300, width=300, compress=1, cuts=[])  # 270,300 bytes: five blocks
def test_png_inflated_by_libdeflate_decodes_to_pillows_pixels(seed: int, mode: str, height: int, width: int,
                                                              compress: int, cuts: list[float]) -> None:
    """Any plain 8-bit PNG, in one IDAT chunk or several, takes the libdeflate path and decodes to Pillow's
    canonical pixels; the stored copy libspng reads is itself a valid PNG of the same rows."""
    buffer = io.BytesIO()
    Image.fromarray(_random_image(seed, mode, height, width)).save(buffer, "PNG", compress_level=compress)
    data = _resplit(buffer.getvalue(), cuts) if cuts else buffer.getvalue()
    image = Image.open(io.BytesIO(data))
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[image.mode]
    stored = decoding._stored_png(data, channels, width, height)
    assert stored is not None  # the new path is taken
    rows = zlib.decompress(b"".join(body for kind, body in _chunks(data) if kind == b"IDAT"))
    (ihdr, _), (idat, stream), (iend, _) = _chunks(stored)
    assert stored[:33] == data[:33] and (ihdr, idat, iend) == (b"IHDR", b"IDAT", b"IEND")
    assert zlib.decompress(stream) == rows and stored == _png(_chunks(stored))  # Adler-32 and CRCs right
    assert len(rows) > 65_535 or stream[2] == 1  # stored blocks: the last one marked final
    fast = decode(data, path="a.png", max_pixels=10**6)
    pixels, grey_view = decoding._canonical(image)
    assert fast.mode == image.mode and fast.pixels.dtype == pixels.dtype and np.array_equal(fast.pixels, pixels)
    assert np.array_equal(fast.grey, grey_view)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS) + sorted(PROCESSED))
def test_bad_inputs_give_what_they_gave_before_libdeflate(bad_inputs: Path, name: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = (bad_inputs / name).read_bytes()
    assert _outcome(data) == _old_outcome(data, monkeypatch)


def _plain_png(compress: int = 6) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(_random_image(5, "RGBA", 40, 30)).save(buffer, "PNG", compress_level=compress)
    return buffer.getvalue()


def _damaged(data: bytes, how: str) -> bytes:
    """``data`` with one kind of damage the libdeflate path must refuse."""
    (ihdr, header), (_, stream), _ = _chunks(data)
    if how == "IDAT CRC":  # the image data intact, its CRC wrong: libspng (which checks no CRC) decodes it
        end = 33 + 12 + len(stream)
        return data[: end - 4] + bytes([data[end - 4] ^ 1]) + data[end - 3 :]
    if how == "IHDR CRC":
        return data[:29] + bytes([data[29] ^ 1]) + data[30:]
    if how == "Adler-32":  # CRC right, checksum of the rows wrong: libspng does not check it and decodes
        return _png([(ihdr, header), (b"IDAT", stream[:-1] + bytes([stream[-1] ^ 1])), (b"IEND", b"")])
    if how == "deflate data":  # CRC right, a byte of the compressed rows changed
        middle = len(stream) // 2
        return _png([(ihdr, header), (b"IDAT", stream[:middle] + bytes([stream[middle] ^ 0x10]) + stream[middle + 1 :]),
                     (b"IEND", b"")])
    if how == "cut stream":  # CRC right, the stream's last bytes missing
        return _png([(ihdr, header), (b"IDAT", stream[:-9]), (b"IEND", b"")])
    if how == "extra rows":  # CRC right, the stream inflates to a row more than IHDR implies
        rows = zlib.decompress(stream)
        return _png([(ihdr, header), (b"IDAT", zlib.compress(rows + rows[-121:])), (b"IEND", b"")])
    if how == "64 KiB window":  # a zlib header zlib refuses (window larger than 32 KiB)
        return _png([(ihdr, header), (b"IDAT", bytes([0x88, 0x1C]) + stream[2:]), (b"IEND", b"")])
    if how == "ancillary chunk":
        return _png([(ihdr, header), (b"tEXt", b"k\x00v"), (b"IDAT", stream), (b"IEND", b"")])
    if how == "after IEND":
        return data + b"\x00"
    if how == "no IEND":
        return data[:-12]
    raise AssertionError(how)


@pytest.mark.parametrize("how", ["IDAT CRC", "IHDR CRC", "Adler-32", "deflate data", "cut stream", "extra rows",
                                 "64 KiB window", "ancillary chunk", "after IEND", "no IEND"])
def test_damaged_or_unusual_pngs_are_not_decoded_by_libdeflate(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A damaged file never gets pixels from the new path: it goes to libspng and Pillow as before, with the
    outcome it had (pixels where libspng, which checks no CRC or Adler-32, decoded it; the same error otherwise)."""
    data = _damaged(_plain_png(), how)
    assert decoding._stored_png(data, 4, 30, 40) is None
    assert _outcome(data) == _old_outcome(data, monkeypatch)


def test_the_damage_cases_are_otherwise_plain() -> None:
    """The damage, not the file, is what the previous test's refusals are about."""
    data = _plain_png()
    assert decoding._stored_png(data, 4, 30, 40) is not None
    assert decoding._stored_png(_resplit(data, [0.3, 0.7]), 4, 30, 40) is not None


def test_large_images_keep_libspngs_own_inflate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above _STORED_MAX of rows the stored copy is not made (it would triple the memory libspng needs)."""
    data = _plain_png()
    monkeypatch.setattr(decoding, "_STORED_MAX", 40 * (1 + 30 * 4) - 1)
    assert decoding._stored_png(data, 4, 30, 40) is None
    monkeypatch.setattr(decoding, "_STORED_MAX", 40 * (1 + 30 * 4))
    assert decoding._stored_png(data, 4, 30, 40) is not None


def test_interlaced_and_sixteen_bit_pngs_are_not_decoded_by_libdeflate() -> None:
    grey = _random_image(6, "L", 20, 19)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    rows = b"".join(b"\x00" + row.tobytes() for x, y, dx, dy in passes for row in grey[y::dy, x::dx])
    interlaced = _png([(b"IHDR", struct.pack(">IIBBBBB", 19, 20, 8, 0, 0, 0, 1)), (b"IDAT", zlib.compress(rows)),
                       (b"IEND", b"")])  # Adam7 (Pillow reads it but does not write it)
    assert decoding._stored_png(interlaced, 1, 19, 20) is None
    assert np.array_equal(decode(interlaced, path="i.png", max_pixels=10**6).pixels, grey)
    buffer = io.BytesIO()
    Image.fromarray(grey.astype(np.uint16) * 257).save(buffer, "PNG")
    assert decoding._stored_png(buffer.getvalue(), 1, 19, 20) is None
