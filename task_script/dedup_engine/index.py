"""Search structures for Hamming-distance range queries over perceptual hashes.

``MultiIndexHash`` is Norouzi, Punjani and Fleet's multi-index hashing (CVPR 2012): the code is cut into ``m``
substrings, each with its own table; by the pigeonhole principle every code within distance ``r`` of the query
agrees with it to within ``r // m`` bits on at least one substring, so probing each table at that small radius
finds every true neighbour, and only those candidates are compared in full. ``BruteForceIndex`` answers the same
queries by scanning; tests use it as the reference. Both share one interface, as imagededup's search does.
"""

from __future__ import annotations

from itertools import combinations
from typing import Protocol

import numpy as np


class HammingIndex(Protocol):
    def _substrings(self, code: int) -> list[int]:
        return [(code >> shift) & mask for shift, mask in zip(self._shifts, self._masks)]

    def add(self, item: int, code: int) -> None: ...

    def within(self, code: int, radius: int) -> list[tuple[int, int]]:
        """Every (item, distance) with distance <= radius, sorted by distance then insertion order."""
        ...


class BruteForceIndex:
    def __init__(self) -> None:
        self._items: list[tuple[int, int]] = []

    def _substrings(self, code: int) -> list[int]:
        return [(code >> shift) & mask for shift, mask in zip(self._shifts, self._masks)]

    def add(self, item: int, code: int) -> None:
        self._items.append((item, code))

    def within(self, code: int, radius: int) -> list[tuple[int, int]]:
        found = [(item, (code ^ other).bit_count()) for item, other in self._items]
        return sorted(((item, d) for item, d in found if d <= radius), key=lambda pair: pair[1])

    def __len__(self) -> int:
        return len(self._items)


ROW_BITS = 40  # a hit is one integer: its distance above these bits, its row below
ROW_MASK = (1 << ROW_BITS) - 1


class MultiIndexHash:
    """Exact radius search on ``bits``-bit codes with substrings of about ``chunk_bits`` bits.

    Each substring's table is a sorted array (rows ordered by their substring, with the offsets of every possible
    value), so probing a table at many flipped values is a handful of vector operations rather than a dictionary
    lookup per value. Codes added since the tables were last built wait in a short tail that every query compares
    directly; the tables are rebuilt when the tail outgrows ``max(tail, built // 16)`` rows (a rebuild is a
    stable sort per table: amortised O(log n) per code). The codes themselves are held as 64-bit words, so the
    distances of a probe's candidates are one XOR and popcount."""

    def __init__(self, bits: int, max_radius: int, chunk_bits: int = 16, tail: int = 2048) -> None:
        if bits <= 0 or max_radius < 0:
            raise ValueError("bits must be positive and max_radius non-negative")
        chunks = max(1, min(bits, round(bits / chunk_bits)))
        widths = [bits // chunks + (1 if i < bits % chunks else 0) for i in range(chunks)]
        self._bits = bits
        self._max_radius = max_radius
        self._chunks = chunks
        self._tail = max(1, tail)
        self._shifts: list[int] = []
        shift = bits
        for width in widths:
            shift -= width
            self._shifts.append(shift)
        self._masks = [(1 << width) - 1 for width in widths]
        self._words = -(-bits // 64)
        # row -> code as 64-bit words (one word: a flat array, the common 64-bit hash, gathered faster)
        self._codes = np.zeros(16 if self._words == 1 else (16, self._words), np.uint64)
        self._parts = np.zeros((16, chunks), np.int64)  # row -> each substring's value
        self._items: list[int] = []  # row -> item
        # flat tables: table t's offsets live at _bases[t] .. _bases[t] + 2**width; _order holds rows per table
        sizes = [(1 << width) + 1 for width in widths]
        self._bases = np.cumsum([0, *sizes[:-1]]).astype(np.int64)
        self._offsets = np.zeros(0, np.int64)  # allocated at the first build (an index may stay empty)
        self._offsets_size = sum(sizes)
        self._order = np.zeros(0, np.int64)
        self._built = 0  # rows [0, _built) are in the tables; the rest is the tail
        # probes by stage: stage s flips exactly s bits of one substring (pigeonhole: after stages 0..s every code
        # within chunks * (s + 1) - 1 of the query has shared a probed value with it)
        sub_radius = max_radius // chunks
        # per stage: the table of each probe, its flip mask, and where that table's offsets start
        self._stages: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for flips in range(sub_radius + 1):
            tables, masks = [], []
            for table, width in enumerate(widths):
                stage = _flip_masks(width, flips)
                tables += [table] * len(stage)
                masks += stage
            table_of = np.array(tables, np.int64)
            self._stages.append((table_of, np.array(masks, np.int64), self._bases[table_of]))

    def __len__(self) -> int:
        return len(self._items)

    def _split(self, code: int) -> np.ndarray | np.uint64:
        if self._words == 1:
            return np.uint64(code)
        return np.array([(code >> (64 * w)) & 0xFFFFFFFFFFFFFFFF for w in range(self._words)], np.uint64)

    def _substrings(self, code: int) -> list[int]:
        return [(code >> shift) & mask for shift, mask in zip(self._shifts, self._masks)]

    def add(self, item: int, code: int) -> None:
        row = len(self._items)
        if row == len(self._codes):
            self._codes = np.concatenate([self._codes, np.zeros_like(self._codes)])
            self._parts = np.concatenate([self._parts, np.zeros_like(self._parts)])
        self._codes[row] = self._split(code)
        self._parts[row] = self._substrings(code)
        self._items.append(item)
        if row + 1 - self._built > max(self._tail, self._built // 16):
            self._build()

    def _build(self) -> None:
        rows = len(self._items)
        if not len(self._offsets):
            self._offsets = np.zeros(self._offsets_size, np.int64)
        orders = []
        for table, mask in enumerate(self._masks):
            values = self._parts[:rows, table]
            orders.append(np.argsort(values, kind="stable"))  # rows of one value stay in insertion order
            region = self._offsets[self._bases[table] : self._bases[table] + mask + 2]  # a view
            region[0] = 0
            np.cumsum(np.bincount(values, minlength=mask + 1), out=region[1:])
            region += table * rows  # table t's rows sit at [t * rows, (t + 1) * rows) of _order
        self._order = np.concatenate(orders)
        self._built = rows

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
        parts = np.array(self._substrings(code), np.int64)
        # hits as one sortable key each, distance << ROW_BITS | row (a row recurs once per matching substring)
        found: list[np.ndarray] = []
        total = 0
        rows_now = len(self._items)
        if rows_now > self._built:  # the tail: compared directly, complete from the start
            total += self._collect(np.arange(self._built, rows_now), query, radius, found)
        for stage, (tables, flips, bases) in enumerate(self._stages):
            if self._built:
                keys = bases + (parts[tables] ^ flips)
                starts = self._offsets[keys]
                lengths = self._offsets[keys + 1] - starts
                hit = lengths > 0
                starts, lengths = starts[hit], lengths[hit]
                if len(lengths):
                    cumulative = np.cumsum(lengths)
                    positions = np.arange(int(cumulative[-1])) + np.repeat(starts - cumulative + lengths, lengths)
                    total += self._collect(self._order[positions], query, radius, found)
            last = stage == len(self._stages) - 1
            if not last and (count is None or total < count):
                continue  # fewer hits than asked for, even counting repeats: the next stage is needed anyway
            exact = radius if last else min(radius, self._chunks * (stage + 1) - 1)
            keys = np.concatenate(found) if found else np.zeros(0, np.int64)
            keys = np.sort(keys[keys < (exact + 1) << ROW_BITS])  # by distance, then row
            if len(keys) > 1:
                keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]  # each row once
            if last or len(keys) >= count:  # type: ignore[operator]
                keys = keys[:count].tolist()
                return [(self._items[key & ROW_MASK], key >> ROW_BITS) for key in keys]
        return []

    def _collect(self, rows: np.ndarray, query: np.ndarray | np.uint64, radius: int, found: list[np.ndarray]) -> int:
        distances = np.bitwise_count(self._codes[rows] ^ query)
        if self._words > 1:
            distances = distances.sum(axis=1)
        within = distances <= radius
        found.append((distances[within].astype(np.int64) << ROW_BITS) | rows[within])
        return len(found[-1])


def _flip_masks(width: int, flips: int) -> list[int]:
    """Every mask of ``width`` bits with exactly ``flips`` bits set (``[0]`` for none)."""
    return [sum(1 << bit for bit in bits) for bits in combinations(range(width), flips)]
