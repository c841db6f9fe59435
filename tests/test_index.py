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
    tail=st.sampled_from([1, 7, 64, 2048]),
)
def test_multi_index_hashing_equals_brute_force(bits: int, radius: int, seed: int, n: int, tail: int) -> None:
    """Whatever part of the codes sits in the built tables and whatever part in the unbuilt tail."""
    rng = random.Random(seed)
    base = [rng.getrandbits(bits) for _ in range(max(1, n // 10))]
    mih, brute = MultiIndexHash(bits, radius, tail=tail), BruteForceIndex()
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


def test_index_finds_the_one_neighbour_among_many_random_codes() -> None:
    rng = random.Random(7)
    index = MultiIndexHash(64, 10)
    for item in range(20_000):
        index.add(item, rng.getrandbits(64))
    near = rng.getrandbits(64)
    index.add(99_999, near ^ 0b1011)
    assert index.within(near, 10) == [(99_999, 3)]
    assert index.within(near ^ (1 << 63), 10) == [(99_999, 4)]


@pytest.mark.parametrize("bits", [16, 25, 36, 49, 64, 100, 256])
def test_every_hash_size_builds_its_tables(bits: int) -> None:
    """Substring widths of 12 to 18 bits (hash sizes 4 to 16): the built tables answer like brute force."""
    rng = random.Random(bits)
    index, brute = MultiIndexHash(bits, 6, tail=8), BruteForceIndex()
    centre = rng.getrandbits(bits)
    for item in range(200):
        code = centre
        for _ in range(rng.randint(0, 8)):
            code ^= 1 << rng.randrange(bits)
        index.add(item, code)
        brute.add(item, code)
    for r in (0, 3, 6):
        assert index.within(centre, r) == brute.within(centre, r)


@settings(max_examples=60, deadline=None)
@given(
    bits=st.sampled_from([64, 256]),
    radius=st.integers(0, 14),
    count=st.integers(1, 10),
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 300),
    tail=st.sampled_from([1, 7, 64, 2048]),
)
def test_nearest_is_the_head_of_the_full_answer(bits: int, radius: int, count: int, seed: int, n: int,
                                                tail: int) -> None:
    rng = random.Random(seed)
    base = [rng.getrandbits(bits) for _ in range(max(1, n // 20))]
    mih = MultiIndexHash(bits, radius, tail=tail)
    for item in range(n):  # dense clusters: many codes within the radius, where stopping early matters
        code = rng.choice(base)
        for _ in range(rng.randint(0, radius + 3)):
            code ^= 1 << rng.randrange(bits)
        mih.add(item, code)
    for _ in range(10):
        query = rng.choice(base) ^ (1 << rng.randrange(bits))
        assert mih.nearest(query, radius, count) == mih.within(query, radius)[:count]
