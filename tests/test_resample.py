"""Our LANCZOS thumbnail must be Pillow's, byte for byte: the perceptual hashes depend on it."""

from __future__ import annotations

from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image

from dedup_engine.decoding import decode
from dedup_engine.hashing import perceptual_hash
from dedup_engine.resample import lanczos_resize


def _pillow(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(grey, mode="L").resize((width, height), Image.Resampling.LANCZOS))


@pytest.mark.parametrize("seed", range(4))
def test_square_images_of_many_sizes_resize_exactly_as_pillow(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(150):
        side = int(rng.integers(2, 520))
        grey = rng.integers(0, 256, (side, side), dtype=np.uint8)
        if rng.random() < 0.5:  # smooth content, where rounding ties are likelier than in noise
            grey = np.clip(rng.normal(120, 40) + np.cumsum(rng.normal(0, 2, (side, side)), axis=1), 0, 255)
            grey = grey.astype(np.uint8)
        for out in (32, 8, 64, int(rng.integers(2, 80))):
            assert np.array_equal(lanczos_resize(grey, out, out), _pillow(grey, out, out)), (side, out)


def test_extreme_values_clip_like_pillow() -> None:
    grey = np.zeros((97, 97), np.uint8)
    grey[::2, ::2] = 255  # a checkerboard of extremes drives the lobes below 0 and above 255
    for out in (32, 48, 96, 150):
        assert np.array_equal(lanczos_resize(grey, out, out), _pillow(grey, out, out))


def test_phash_hex_equals_imagehash_on_the_real_images(engine_data: Path) -> None:
    files = sorted(p for p in engine_data.rglob("*") if p.suffix.lower() in {".png", ".bmp", ".tif", ".jpg"})
    assert files
    for path in files:
        grey = decode(path.read_bytes(), path=path.name, max_pixels=10**8).grey
        square = grey[: min(grey.shape), : min(grey.shape)]
        for size in (8, 16):
            for image in (grey, np.ascontiguousarray(square)):
                expected = imagehash.phash(Image.fromarray(image, mode="L"), hash_size=size)
                assert str(perceptual_hash(image, "phash", size)) == str(expected), (path.name, size)
