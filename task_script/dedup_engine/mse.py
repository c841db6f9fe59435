"""Mean squared error search that gives the brute-force answer while comparing few full images.

Two exact lower bounds prune the kept images of the same shape before any full comparison:
- the global mean: MSE(a, b) >= (mean(a) - mean(b))**2, so a sorted list of means bounds the search window;
- block means: for any partition into blocks, MSE(a, b) >= sum_k (n_k / N) * (mean_k(a) - mean_k(b))**2
  (Jensen's inequality inside each block), computed for the whole window at once on 8x8 grids.
Only images whose bounds are within the threshold are compared in full, in float64 (never uint8 arithmetic, which
wraps: a uniform 16-level shift would score 0).
"""

from __future__ import annotations

import bisect
import math

import numpy as np

GRID = 8


def block_means(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact block means on a GRID x GRID partition (per channel) and each block's share of the pixels."""
    height, width = pixels.shape[:2]
    rows = np.linspace(0, height, min(GRID, height) + 1).astype(int)
    cols = np.linspace(0, width, min(GRID, width) + 1).astype(int)
    values = pixels.astype(np.float64)
    sums = np.add.reduceat(np.add.reduceat(values, rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float64)
    if values.ndim == 3:
        counts = counts[..., None]
    means = sums / counts
    weights = np.broadcast_to(counts / counts.sum() / (1 if values.ndim == 2 else values.shape[2]), means.shape)
    return means.astype(np.float64), np.ascontiguousarray(weights)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


class _ShapeGroup:
    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights
        self.means: list[float] = []  # sorted
        self.members: list[int] = []  # kept ids, in the order of self.means
        self.grids: dict[int, np.ndarray] = {}
        self.pixels: dict[int, np.ndarray] = {}


class MseIndex:
    """Kept images by shape; ``nearest`` returns every kept image within ``max_mse``, nearest first."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, ...], _ShapeGroup] = {}
        self._order: dict[int, int] = {}
        self.full_comparisons = 0

    def add(self, item: int, pixels: np.ndarray) -> None:
        grid, weights = block_means(pixels)
        group = self._groups.setdefault(pixels.shape, _ShapeGroup(weights))
        mean = float(pixels.mean())
        at = bisect.bisect_right(group.means, mean)
        group.means.insert(at, mean)
        group.members.insert(at, item)
        group.grids[item] = grid
        group.pixels[item] = pixels
        self._order[item] = len(self._order)

    def within(self, pixels: np.ndarray, max_mse: float) -> list[tuple[int, float]]:
        group = self._groups.get(pixels.shape)
        if group is None:
            return []
        mean = float(pixels.mean())
        reach = math.sqrt(max_mse) + 1e-9
        lo = bisect.bisect_left(group.means, mean - reach)
        hi = bisect.bisect_right(group.means, mean + reach)
        window = group.members[lo:hi]
        if not window:
            return []
        grid, _ = block_means(pixels)
        grids = np.stack([group.grids[item] for item in window])
        diff = grids - grid
        bounds = (diff * diff * group.weights).reshape(len(window), -1).sum(axis=1)
        hits: list[tuple[int, float]] = []
        for item, bound in zip(window, bounds):
            if bound <= max_mse + 1e-9:
                self.full_comparisons += 1
                value = mse(group.pixels[item], pixels)
                if value <= max_mse:
                    hits.append((item, value))
        hits.sort(key=lambda pair: (pair[1], self._order[pair[0]]))
        return hits
