from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_engine.mse import MseIndex, block_means, mse


def brute(kept: list[np.ndarray], query: np.ndarray, max_mse: float) -> list[tuple[int, float]]:
    hits = [(i, mse(k, query)) for i, k in enumerate(kept) if k.shape == query.shape]
    return sorted([(i, v) for i, v in hits if v <= max_mse], key=lambda p: (p[1], p[0]))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), max_mse=st.sampled_from([0.0, 5.0, 50.0, 400.0]),
       channels=st.sampled_from([0, 3]))
def test_pruned_search_gives_the_brute_force_answer(seed: int, n: int, max_mse: float, channels: int) -> None:
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
        image = image.astype(np.float32)
        kept.append(image)
        index.add(i, image)
    for query in kept[:10] + [kept[0] + np.float32(4.0)]:
        got = index.within(query, max_mse)
        want = brute(kept, query, max_mse)
        assert [i for i, _ in got] == [i for i, _ in want]
        assert np.allclose([v for _, v in got], [v for _, v in want])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), h=st.integers(1, 30), w=st.integers(1, 30))
def test_block_means_bound_never_exceeds_the_mse(seed: int, h: int, w: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0, 255, (h, w)), rng.uniform(0, 255, (h, w))
    (ga, weights), (gb, _) = block_means(a), block_means(b)
    bound = float(((ga - gb) ** 2 * weights).sum())
    assert bound <= mse(a, b) + 1e-6
    assert (a.mean() - b.mean()) ** 2 <= bound + 1e-6


def test_mse_is_float_not_wrapping_uint8() -> None:
    a = np.full((8, 8), 200, np.uint8)
    b = np.full((8, 8), 216, np.uint8)
    assert mse(a, b) == 256.0
