from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_engine.mse import MseIndex, block_means, mse


def brute(kept: list[np.ndarray], query: np.ndarray, max_mse: float) -> list[tuple[int, float]]:
    hits = [(i, mse(k, query)) for i, k in enumerate(kept) if k.shape == query.shape]
    return sorted([(i, v) for i, v in hits if v <= max_mse], key=lambda p: (p[1], p[0]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), max_mse=st.sampled_from([0.0, 5.0, 50.0, 400.0]),
       channels=st.sampled_from([0, 3]), eight_bit=st.booleans())
def test_pruned_search_gives_the_brute_force_answer(
    seed: int, n: int, max_mse: float, channels: int, eight_bit: bool
) -> None:
    rng = np.random.default_rng(seed)
    shapes = [(17, 23), (16, 16)]
    kept = []
    index = MseIndex()
    base = rng.uniform(0, 255, (4, 17, 23) + ((channels,) if channels else ()))
    for i in range(n):
        shape = shapes[rng.integers(0, 2)] + ((channels,) if channels else ())
        if shape[:2] == (17, 23):
            image = base[rng.integers(0, 4)] + rng.normal(0, rng.choice([0.5, 3, 12]), shape)
        else:
            image = rng.uniform(0, 255, shape)
        image = np.clip(np.rint(image), 0, 255).astype(np.uint8) if eight_bit else image.astype(np.float32)
        kept.append(image)
        index.add(i, image)
    shifted = (kept[0].astype(np.int16) + 4).clip(0, 255).astype(np.uint8) if eight_bit else kept[0] + np.float32(4)
    for query in kept[:10] + [shifted]:
        want = brute(kept, query, max_mse)
        for count in (None, 1, 2, 8):
            got = index.nearest(query, max_mse, count)
            assert [i for i, _ in got] == [i for i, _ in want][:count]
            assert np.allclose([v for _, v in got], [v for _, v in want][:count])
        assert index.within(query, max_mse) == index.nearest(query, max_mse, None)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 70), w=st.integers(1, 70))
def test_block_means_bounds_never_exceed_the_mse_and_tighten_with_the_grid(seed: int, h: int, w: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 255, (h, w)), rng.uniform(0, 255, (h, w))
    bounds = []
    for grid in (1, 8, 32):
        (ga, weights), (gb, _) = block_means(a, grid), block_means(b, grid)
        bounds.append(float(((ga - gb) ** 2 * weights).sum()))
    assert bounds[0] == pytest.approx((a.mean() - b.mean()) ** 2)
    assert bounds[2] <= mse(a, b) + 1e-6


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from([(1, 1), (7, 300), (248, 248), (31, 17, 3), (9, 9, 4)]))
def test_eight_bit_mse_is_exactly_the_float64_mean_of_squares(seed: int, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(seed)
    a, b = (rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(2))
    diff = a.astype(np.float64) - b.astype(np.float64)
    assert mse(a, b) == float(np.mean(diff * diff))


def test_mse_is_float_not_wrapping_uint8() -> None:
    a = np.full((8, 8), 200, np.uint8)
    b = np.full((8, 8), 216, np.uint8)
    assert mse(a, b) == 256.0
    assert mse(b, a) == 256.0

