from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup_engine.index import BruteForceIndex, MultiIndexHash


@settings(max_examples=60, deadline=None)
@given(
    bits=st.sampled_from([64, 256]),
    radius=st.integers(0, 14),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
)
def test_multi_index_hashing_equals_brute_force(bits: int, radius: int, seed: int, n: int) -> None:
    rng = random.Random(seed)
    base = [rng.getrandbits(bits) for _ in range(max(1, n // 10))]
    mih, brute = MultiIndexHash(bits, radius), BruteForceIndex()
    codes = []
    for item in range(n):  # clusters around a few centres, so that there are near neighbours to find
        code = rng.choice(base)
        for _ in range(rng.randint(0, radius + 3)):
            code ^= 1 << rng.randrange(bits)
        codes.append(code)
        mih.add(item, code)
        brute.add(item, code)
    for query in codes[:40] + [rng.getrandbits(bits) for _ in range(5)]:
        for r in {0, radius // 2, radius}:
            assert mih.within(query, r) == brute.within(query, r)


def test_radius_beyond_the_built_one_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        MultiIndexHash(64, 4).within(0, 5)


def test_index_probes_few_codes() -> None:
    rng = random.Random(7)
    index = MultiIndexHash(64, 10)
    for item in range(20_000):
        index.add(item, rng.getrandbits(64))
    near = rng.getrandbits(64)
    index.add(99_999, near ^ 0b1011)
    assert index.within(near, 10) == [(99_999, 3)]


@settings(max_examples=60, deadline=None)
@given(
    bits=st.sampled_from([64, 256]),
    radius=st.integers(0, 14),
    count=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
)
def test_nearest_is_the_head_of_the_full_answer(bits: int, radius: int, count: int, seed: int, n: int) -> None:
    rng = random.Random(seed)
    base = [rng.getrandbits(bits) for _ in range(max(1, n // 20))]
    mih = MultiIndexHash(bits, radius)
    for item in range(n):  # dense clusters: many codes within the radius, where stopping early matters
        code = rng.choice(base)
        for _ in range(rng.randint(0, radius + 3)):
            code ^= 1 << rng.randrange(bits)
        mih.add(item, code)
    for _ in range(10):
        query = rng.choice(base) ^ (1 << rng.randrange(bits))
        assert mih.nearest(query, radius, count) == mih.within(query, radius)[:count]
