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
