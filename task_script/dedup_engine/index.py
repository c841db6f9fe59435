"""Search structures for Hamming-distance range queries over perceptual hashes.

``MultiIndexHash`` is Norouzi, Punjani and Fleet's multi-index hashing (CVPR 2012): the code is cut into ``m``
substrings, each with its own table; by the pigeonhole principle every code within distance ``r`` of the query
agrees with it to within ``r // m`` bits on at least one substring, so probing each table at that small radius
finds every true neighbour, and only those candidates are compared in full. ``BruteForceIndex`` answers the same
queries by scanning; tests use it as the reference. Both share one interface, as imagededup's search does.
"""

from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Protocol


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
    """Exact radius search on ``bits``-bit codes with substrings of about ``chunk_bits`` bits."""

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
        self._codes: dict[int, int] = {}
        self._order: dict[int, int] = {}
        sub_radius = max_radius // chunks
        self._chunks = chunks
        self._probes: list[list[int]] = [_flip_masks(width, sub_radius) for width in widths]
        # probes are ordered by the bits they flip: the first _stage_ends[s] flip at most s bits
        self._stage_ends = [[sum(comb(width, r) for r in range(s + 1)) for s in range(sub_radius + 1)]
                            for width in widths]

    def __len__(self) -> int:
        return len(self._codes)

    def add(self, item: int, code: int) -> None:
        self._order[item] = len(self._order)
        self._codes[item] = code
        for (shift, mask), table in zip(self._slices, self._tables):
            table.setdefault((code >> shift) & mask, []).append(item)

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
        codes, order = self._codes, self._order
        seen: set[int] = set()
        stages = len(self._stage_ends[0])
        for stage in range(stages):
            for (shift, mask), table, probes, ends in zip(self._slices, self._tables, self._probes, self._stage_ends):
                part = (code >> shift) & mask
                for flip in probes[ends[stage - 1] if stage else 0 : ends[stage]]:
                    bucket = table.get(part ^ flip)
                    if bucket:
                        seen.update(bucket)
            last = stage == stages - 1
            if count is None and not last:
                continue
            exact = radius if last else min(radius, self._chunks * (stage + 1) - 1)
            hits = [(item, d) for item in seen if (d := (code ^ codes[item]).bit_count()) <= exact]
            if last or len(hits) >= count:  # type: ignore[operator]
                hits.sort(key=lambda pair: (pair[1], order[pair[0]]))
                return hits if count is None else hits[:count]
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
