from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dedup_engine.decoding import decode
from dedup_engine.hashing import ALGORITHMS, hamming, hash_to_int, perceptual_hash


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("size", [8, 16])
def test_hex_equals_what_imagehash_prints(engine_data: Path, algorithm: str, size: int) -> None:
    files = sorted(engine_data.glob("*.png"))[:12] + sorted(engine_data.glob("*.bmp"))[:12]
    assert len(files) >= 20
    for path in files:
        grey = decode(path.read_bytes(), path=path.name, max_pixels=10**8).grey
        with Image.open(path) as image:
            expected = str(ALGORITHMS[algorithm](image, hash_size=size))
        assert str(perceptual_hash(grey, algorithm, size)) == expected, path.name


def test_rgba_cytpix_export_hashes_like_its_grey_image(engine_data: Path) -> None:
    path = sorted(engine_data.glob("*.png"))[0]
    with Image.open(path) as image:
        grey = np.asarray(image.convert("L"))
    rgba = Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
    assert str(imagehash.phash(rgba)) == str(perceptual_hash(grey, "phash", 8))


def test_int_form_keeps_distances() -> None:
    a = imagehash.hex_to_hash("8f373714acfcf4d0")
    b = imagehash.hex_to_hash("8f373714acfcf4d1")
    assert hamming(hash_to_int(a), hash_to_int(b)) == a - b == 1


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=64), min_size=1, max_size=70),
       repeat=st.booleans())
def test_the_hash_median_is_numpys(values: list[float], repeat: bool) -> None:
    from dedup_engine.hashing import _median

    array = np.array(values + values[:3] if repeat else values)
    assert _median(array) == float(np.median(array))


@settings(max_examples=150, deadline=None)
@given(side=st.integers(8, 300), levels=st.integers(1, 4), seed=st.integers(0, 10_000),
       shape=st.sampled_from(["noise", "flat", "square", "mirrored"]))
def test_phash_equals_imagehash_where_coefficients_tie(side: int, levels: int, seed: int, shape: str) -> None:
    """Only the 8x8 coefficients the hash keeps are computed, as matrix products; where one of them lies at the
    median (flat frames, symmetric ones, few grey levels) the rounding could decide a bit, and scipy's DCT, as in
    imagehash, is used instead. Either way the hex is imagehash's."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, levels, (side, side), dtype=np.uint8) * (255 // levels)
    if shape == "flat":
        grey[:] = grey[0, 0]
    elif shape == "square":
        grey[:] = 40
        grey[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 200
    elif shape == "mirrored":
        grey = np.ascontiguousarray(np.maximum(grey, grey[:, ::-1]))
    expected = str(imagehash.phash(Image.fromarray(grey, mode="L")))
    assert str(perceptual_hash(grey, "phash", 8)) == expected


@settings(max_examples=150, deadline=None)
@given(height=st.integers(8, 400), width=st.integers(8, 400), seed=st.integers(0, 10_000), smooth=st.booleans())
def test_phash_of_any_shape_equals_imagehash(height: int, width: int, seed: int, smooth: bool) -> None:
    """Crops and resized copies are not square: their thumbnail is Pillow's own, and the hex still imagehash's."""
    rng = np.random.default_rng(seed)
    grey = rng.integers(0, 256, (height, width), dtype=np.uint8)
    if smooth:
        grey = np.clip(120 + np.cumsum(rng.normal(0, 2, (height, width)), axis=1), 0, 255).astype(np.uint8)
    assert str(perceptual_hash(grey, "phash", 8)) == str(imagehash.phash(Image.fromarray(grey, mode="L")))


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 17), seed=st.integers(0, 10_000))
def test_hex_and_int_are_imagehashs_for_any_hash_size(size: int, seed: int) -> None:
    from dedup_engine.hashing import hash_hex

    bits = np.random.default_rng(seed).random((size, size)) < 0.5
    value = imagehash.ImageHash(bits)
    assert hash_hex(value) == str(value)
    assert hash_to_int(value) == int(str(value), 16)
