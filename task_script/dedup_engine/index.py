"""Search structures for Hamming-distance range queries over perceptual hashes.

``MultiIndexHash`` is Norouzi, Punjani and Fleet's multi-index hashing (CVPR 2012): the code is cut into ``m``
substrings, each with its own table; by the pigeonhole principle every code within distance ``r`` of the query
agrees with it to within ``r // m`` bits on at least one substring, so probing each table at that small radius
finds every true neighbour, and only those candidates are compared in full. ``BruteForceIndex`` answers the same
queries by scanning; tests use it as the reference. Both share one interface, as imagededup's search does.
"""

from __future__ import annotations

from itertools import chain, combinations
from math import comb
from typing import Protocol

import numpy as np


class HammingIndex(Protocol):
    def add(self, item: int, code: int) -> None: ...

    def within(self, code: int, radius: int) -> list[tuple[int, int]]:
        """Every (item, distance) with distance <= radius, sorted by distance then insertion order."""
        ...


class BruteForceIndex:
    def __init__(self) -> None:
        self._items: list[tuple[int, int]] = []

    def add(self, item: int, code: int) -> None:
        self._items.append((item, code))

    def within(self, code: int, radius: int) -> list[tuple[int, int]]:
        found = [(item, (code ^ other).bit_count()) for item, other in self._items]
        return sorted(((item, d) for item, d in found if d <= radius), key=lambda pair: pair[1])

    def __len__(self) -> int:
        return len(self._items)


class MultiIndexHash:
    """Exact radius search on ``bits``-bit codes with substrings of about ``chunk_bits`` bits.

    The tables hold row numbers (insertion order); the codes themselves are held as 64-bit words in one array, so
    the distances of a probe's candidates are computed in one vector operation (XOR and popcount)."""

    def __init__(self, bits: int, max_radius: int, chunk_bits: int = 16) -> None:
        if bits <= 0 or max_radius < 0:
            raise ValueError("bits must be positive and max_radius non-negative")
        chunks = max(1, min(bits, round(bits / chunk_bits)))
        widths = [bits // chunks + (1 if i < bits % chunks else 0) for i in range(chunks)]
        self._bits = bits
        self._max_radius = max_radius
        self._slices: list[tuple[int, int]] = []  # (shift, mask) of each substring
        shift = bits
        for width in widths:
            shift -= width
            self._slices.append((shift, (1 << width) - 1))
        self._tables: list[dict[int, list[int]]] = [{} for _ in widths]
        self._words = -(-bits // 64)
        self._codes = np.zeros((16, self._words), np.uint64)  # row -> code, as 64-bit words
        self._items: list[int] = []  # row -> item
        sub_radius = max_radius // chunks
        self._chunks = chunks
        self._probes: list[list[int]] = [_flip_masks(width, sub_radius) for width in widths]
        # probes are ordered by the bits they flip: the first _stage_ends[s] flip at most s bits
        self._stage_ends = [[sum(comb(width, r) for r in range(s + 1)) for s in range(sub_radius + 1)]
                            for width in widths]

    def __len__(self) -> int:
        return len(self._items)

    def _split(self, code: int) -> np.ndarray:
        return np.array([(code >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(self._words)], np.uint64)

    def add(self, item: int, code: int) -> None:
        row = len(self._items)
        if row == len(self._codes):
            grown = np.zeros((2 * row, self._words), np.uint64)
            grown[:row] = self._codes
            self._codes = grown
        self._codes[row] = self._split(code)
        self._items.append(item)
        for (shift, mask), table in zip(self._slices, self._tables):
            table.setdefault((code >> shift) & mask, []).append(row)

    def within(self, code: int, radius: int) -> list[tuple[int, int]]:
        return self.nearest(code, radius, None)

    def nearest(self, code: int, radius: int, count: int | None) -> list[tuple[int, int]]:
        """The ``count`` nearest items within ``radius`` (all of them for None), sorted by distance then insertion
        order, as ``within(...)[:count]``. The tables are probed one flipped bit at a time: after probing the
        substrings at up to ``s`` flipped bits, every code within ``chunks * (s + 1) - 1`` has been seen
        (pigeonhole), so once ``count`` hits lie within that distance no farther code can displace them. On
        look-alike frames, where hundreds of hashes lie within the radius, this stops long before the full probe."""
        if radius > self._max_radius:
            raise ValueError(f"radius {radius} exceeds the index's max_radius {self._max_radius}")
        query = self._split(code)
        found_rows: list[np.ndarray] = []  # per stage: rows within the radius (a row may recur: one per substring)
        found_distances: list[np.ndarray] = []
        stages = len(self._stage_ends[0])
        for stage in range(stages):
            buckets: list[list[int]] = []
            for (shift, mask), table, probes, ends in zip(self._slices, self._tables, self._probes, self._stage_ends):
                part = (code >> shift) & mask
                for flip in probes[ends[stage - 1] if stage else 0 : ends[stage]]:
                    bucket = table.get(part ^ flip)
                    if bucket:
                        buckets.append(bucket)
            if buckets:
                rows = np.fromiter(chain.from_iterable(buckets), np.int64)
                distances = np.bitwise_count(self._codes[rows] ^ query).sum(axis=1, dtype=np.int64)
                within = distances <= radius
                found_rows.append(rows[within])
                found_distances.append(distances[within])
            last = stage == stages - 1
            if count is None and not last:
                continue
            exact = radius if last else min(radius, self._chunks * (stage + 1) - 1)
            rows = np.concatenate(found_rows) if found_rows else np.zeros(0, np.int64)
            distances = np.concatenate(found_distances) if found_distances else np.zeros(0, np.int64)
            close = distances <= exact
            rows, first = np.unique(rows[close], return_index=True)
            if last or len(rows) >= count:  # type: ignore[operator]
                distances = distances[close][first]
                order = np.lexsort((rows, distances))[: len(rows) if count is None else count]
                return [(self._items[row], int(d)) for row, d in zip(rows[order].tolist(), distances[order].tolist())]
        return []


def _flip_masks(width: int, radius: int) -> list[int]:
    masks = [0]
    for r in range(1, min(radius, width) + 1):
        for bits in combinations(range(width), r):
            value = 0
            for bit in bits:
                value |= 1 << bit
            masks.append(value)
    return masks
