from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image

from dedup_engine import DedupParams, dedup
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


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["L", "RGB", "RGBA", "grey-RGBA", "grey-RGB"]),
       height=st.integers(1, 70), width=st.integers(1, 70), compress=st.integers(0, 9))
def test_libspng_decodes_to_the_same_pixels_as_pillow(seed: int, mode: str, height: int, width: int,
                                                       compress: int) -> None:
    """The fast PNG path (libspng) and Pillow's give one canonical image: same pixels, same grey view."""
    from dedup_engine import decoding

    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if mode == "L":
        array = grey
    elif mode.startswith("grey-"):
        array = np.dstack([grey] * 3 + ([np.full_like(grey, 255)] if mode.endswith("RGBA") else []))
    else:
        array = rng.integers(0, 256, (height, width, len(mode)), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG", compress_level=compress)
    data = buffer.getvalue()
    fast = decode(data, path="a.png", max_pixels=10**6)
    image = Image.open(io.BytesIO(data))
    assert decoding.header_mode(data, "PNG") == image.mode == fast.mode  # the fast path was taken
    assert decoding._decode_with_spng(data, image.mode, width, height) is not None
    pixels, grey_view = decoding._canonical(image)
    assert fast.pixels.dtype == pixels.dtype and np.array_equal(fast.pixels, pixels)
    assert np.array_equal(fast.grey, grey_view)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kind=st.sampled_from(["L", "RGB", "P-grey-shuffled", "P-colour", "1", "RGBA"]),
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
    else:
        image = Image.fromarray(rng.integers(0, 256, (height, width, len(kind)), dtype=np.uint8), kind)
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
