"""Mean squared error search that gives the brute-force answer while comparing few full images.

Exact lower bounds prune the kept images of the same shape before any full comparison, coarse to fine:
- the global mean: MSE(a, b) >= (mean(a) - mean(b))**2, checked for every kept image at once;
- block means: for any partition into blocks, MSE(a, b) >= sum_k (n_k / N) * (mean_k(a) - mean_k(b))**2
  (Jensen's inequality inside each block): first on an 8x8 grid, then, for what is left, on a 32x32 grid (the
  finer the partition, the closer the bound comes to the MSE itself).
Only images whose bounds are within the threshold are compared in full. The MSE is computed exactly: for 8-bit
pixels as an integer sum of squared differences (OpenCV's L2SQR norm, never uint8 arithmetic, which wraps: a
uniform 16-level shift would score 0), otherwise in float64. Bounds carry a small slack for the rounding of the
float64 block means, so that pruning never drops an image whose MSE is within the threshold.
"""

from __future__ import annotations

import heapq

import cv2
import numpy as np

GRIDS = (8, 32)  # block grids of the two block-mean bounds, coarse then fine
FULL_BATCH = 16  # candidates whose fine bound is computed in one vector operation
SLACK = 1e-6  # relative slack on the bounds (float64 rounding of block means), in units of the threshold + 1


def block_means(pixels: np.ndarray, grid: int = GRIDS[0]) -> tuple[np.ndarray, np.ndarray]:
    """Exact block means on a ``grid`` x ``grid`` partition (per channel) and each block's share of the pixels."""
    height, width = pixels.shape[:2]
    rows = _edges(height, grid)
    cols = _edges(width, grid)
    sums = np.add.reduceat(np.add.reduceat(pixels, rows[:-1], axis=0, dtype=np.float64), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols)).astype(np.float64)
    if pixels.ndim == 3:
        counts = counts[..., None]
    means = sums / counts
    weights = np.broadcast_to(counts / counts.sum() / (1 if pixels.ndim == 2 else pixels.shape[2]), means.shape)
    return means, np.ascontiguousarray(weights)


def _edges(size: int, grid: int) -> np.ndarray:
    parts = min(grid, size)
    return np.array([(i * size) // parts for i in range(parts + 1)])


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Exact mean squared error of two arrays of one shape (8-bit: integer sum of squares; else float64)."""
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        # the sum of squares is an integer; OpenCV returns it through a square root, so it is rounded back
        return float(round(cv2.norm(a, b, cv2.NORM_L2SQR))) / a.size
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


class _Rows:
    """An append-only 2-D float array with amortised growth (rows are kept images, in insertion order)."""

    def __init__(self, width: int, dtype: type = np.float64) -> None:
        self.data = np.empty((16, width), dtype)
        self.size = 0

    def append(self, row: np.ndarray) -> None:
        if self.size == len(self.data):
            grown = np.empty((2 * len(self.data), self.data.shape[1]), self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size] = row
        self.size += 1

    @property
    def rows(self) -> np.ndarray:
        return self.data[: self.size]


class _ShapeGroup:
    def __init__(self, coarse_weights: np.ndarray, fine_weights: np.ndarray) -> None:
        self.coarse_weights = coarse_weights.ravel()
        self.fine_weights = fine_weights.ravel()
        self.members: list[int] = []  # kept ids, in insertion order
        self.means = _Rows(1)
        self.coarse = _Rows(self.coarse_weights.size)
        self.fine = _Rows(self.fine_weights.size)
        self.pixels: dict[int, np.ndarray] = {}


class MseIndex:
    """Kept images by shape; ``nearest`` returns the nearest kept images within ``max_mse``, nearest first."""

    def __init__(self) -> None:
        self._groups: dict[tuple[int, ...], _ShapeGroup] = {}
        self._order: dict[int, int] = {}
        self.full_comparisons = 0
        self._last: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]] | None = None

    def _grids(self, pixels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Block means and weights on each grid; the last image's are remembered (an image searched for and
        then kept is summarised once)."""
        if self._last is None or self._last[0] is not pixels:
            self._last = (pixels, [block_means(pixels, grid) for grid in GRIDS])
        return self._last[1]

    def add(self, item: int, pixels: np.ndarray) -> None:
        (coarse, coarse_weights), (fine, fine_weights) = self._grids(pixels)
        group = self._groups.get(pixels.shape)
        if group is None:
            group = self._groups[pixels.shape] = _ShapeGroup(coarse_weights, fine_weights)
        group.members.append(item)
        group.means.append(np.array([pixels.mean(dtype=np.float64)]))
        group.coarse.append(coarse.ravel())
        group.fine.append(fine.ravel())
        group.pixels[item] = pixels
        self._order[item] = len(self._order)

    def within(self, pixels: np.ndarray, max_mse: float) -> list[tuple[int, float]]:
        """Every kept image of the same shape within ``max_mse``, nearest first (ties: insertion order)."""
        return self.nearest(pixels, max_mse, None)

    def nearest(self, pixels: np.ndarray, max_mse: float, count: int | None) -> list[tuple[int, float]]:
        """The ``count`` nearest kept images within ``max_mse`` (all of them for None), exactly
        ``within(...)[:count]``. Candidates are compared in full in the order of their coarse bound; once
        ``count`` hits are in hand, the farthest of them tightens the threshold, and the search stops at the
        first candidate whose bound exceeds it (on look-alike frames hundreds of kept images lie within
        ``max_mse``: the few nearest are all the decision uses)."""
        group = self._groups.get(pixels.shape)
        if group is None:
            return []
        limit = _slackened(max_mse)
        mean = float(pixels.mean(dtype=np.float64))
        gap = group.means.rows[:, 0] - mean
        candidates = np.flatnonzero(gap * gap <= limit)
        if not candidates.size:
            return []
        (coarse, _), (fine, _) = self._grids(pixels)
        bounds = _bounds(group.coarse.rows[candidates], coarse.ravel(), group.coarse_weights)
        keep = bounds <= limit
        candidates, bounds = candidates[keep], bounds[keep]
        order = np.argsort(bounds, kind="stable")
        candidates, bounds = candidates[order], bounds[order]
        threshold = max_mse
        best: list[tuple[float, int, int]] = []  # max-heap of (-value, -insertion order, item): the count nearest
        for start in range(0, len(candidates), FULL_BATCH):
            if bounds[start] > limit:
                break  # bounds ascend: every later candidate is farther than the count-th hit
            rows = candidates[start : start + FULL_BATCH]
            fine_bounds = _bounds(group.fine.rows[rows], fine.ravel(), group.fine_weights)
            for row, coarse_bound, fine_bound in zip(rows.tolist(), bounds[start : start + FULL_BATCH].tolist(),
                                                     fine_bounds.tolist()):
                if coarse_bound > limit or fine_bound > limit:
                    continue
                item = group.members[row]
                self.full_comparisons += 1
                value = mse(group.pixels[item], pixels)
                if value > threshold:
                    continue
                heapq.heappush(best, (-value, -self._order[item], item))
                if count is not None and len(best) > count:
                    heapq.heappop(best)
                if count is not None and len(best) == count:
                    threshold = -best[0][0]  # a farther image cannot displace the count-th
                    limit = min(limit, _slackened(threshold))
        return [(item, -value) for value, _, item in sorted(best, reverse=True)]


def _slackened(threshold: float) -> float:
    """A threshold widened by the bounds' rounding slack: a bound above it proves the MSE is above ``threshold``."""
    return threshold + SLACK * (threshold + 1.0)


def _bounds(kept: np.ndarray, query: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The block-mean lower bound of the MSE between the query and each kept row."""
    diff = kept - query
    return (diff * diff) @ weights
