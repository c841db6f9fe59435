"""Layout signatures: how the hash method finds its candidates, ranks them, and skips the hopeless ones.

On look-alike frames (one cell on an even background, the CytPix's), hundreds of kept images lie within a few bits
of any new image's 64-bit perceptual hash at 40,000 images, and the Hamming distance, an integer from 0 to 10
there, does not tell the image a copy was made from from its look-alikes. The real-valued coefficients that the
hash only takes the signs of do: a *signature* is the lowest 8x8 DCT coefficients of a 32x32 area-averaged thumbnail
(the DC term dropped, so an offset does not count), scaled to unit length (so a gain does not count). The squared
distance between two signatures is 0 for identical layouts and at most 4.

A copy shifted by a few pixels, or cropped, moves a small cell within its frame and with it the signature (and the
hash: on generated CytPix frames a 3-4 px shift takes a quarter of the copies past 10 bits). So each image also
gets a *centred* signature, of a window centred on its foreground's centroid and sized by the foreground's spread
(four radii of gyration): a shift, a crop that does not cut into the cells, or a resize leaves that window as it
was. It is computed on the proof image (the frame reduced to at most 128 pixels a side).

Candidates are the nearest kept signatures and centred signatures, from graph indexes (faiss' HNSW, which answer
in about the same time whatever the run's size), and, if ``max_distance`` is set, the nearest perceptual hashes
within it (by default not: on every set measured they added no candidate the signatures had not found). Each
image's *sensitivity* (how far its signature moves under a shift of ``max_shift_px``) says how far a copy's
signature can lie: candidates beyond it are not looked at, and the rest are proven nearest first. Signatures only
propose; the pixel proof decides.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

THUMB = 32
LOW = 8
DIMENSIONS = LOW * LOW - 1


WINDOW_RADII = 4.0  # the centred window's side, in radii of gyration of the foreground
MIN_WINDOW = 8.0  # proof pixels


def layout(grey: np.ndarray, max_shift_px: int, factor: int = 1) -> tuple[np.ndarray, float]:
    """The signature of an 8-bit grey image (float32, unit length; zeros for a flat image) and its *sensitivity*:
    how far the signature moves when the image is shifted by ``max_shift_px`` (the larger of a shift along x and
    along y). ``grey`` may be the frame reduced by a whole ``factor`` (the proof image: the thumbnail is an area
    average either way, and reducing 124 pixels instead of 248 costs a third). A smooth cell on an even background
    barely moves its signature; a field of sharp nuclei moves it a lot. A copy's signature distance to its
    original stays within about the larger of the two sensitivities (measured: at most 1.04 times it, plus 0.01, on
    realdup-dev and the generated sets), which is what lets the grouper skip look-alikes far beyond it.

    The shifted thumbnails are linear interpolations (edges replicated), so the low DCT coefficients of the
    thumbnail and of both shifts come out of two small matrix products (see ``_shift_products``)."""
    step = max_shift_px * THUMB / (max(grey.shape) * factor)
    rows, columns = _shift_products(grey.shape, round(step, 6))
    products = rows @ grey.astype(np.float32) @ columns  # [[C, C shifted along x], [C shifted along y, -]]
    blocks = products.reshape(2, LOW, 2, LOW).transpose(0, 2, 1, 3).reshape(4, LOW * LOW)[:3, 1:]
    gram = (blocks @ blocks.T).tolist()  # the three signatures' norms and angles, before they are made unit
    norms = [math.sqrt(max(gram[i][i], 0.0)) for i in range(3)]
    # float32 products leave a flat image about 1e-6 of its DC term in the others (measured up to 1.6e-6 at
    # 512x300): below 1e-5 of it, an image is flat (a hundred-thousandth of its level is no layout)
    flat = 1e-5 * abs(float(products[0, 0])) + 1e-6
    if norms[0] <= flat:  # a flat image: its signature is zeros, a shift's unit length (or zeros) from it
        return np.zeros(DIMENSIONS, np.float32), max(1.0 if norm > flat else 0.0 for norm in norms[1:])
    value = (blocks[0] / norms[0]).astype(np.float32)
    moved = max(2.0 - 2.0 * gram[0][i] / (norms[0] * norms[i]) if norms[i] > flat else 1.0 for i in (1, 2))
    return value, max(moved, 0.0)


@lru_cache(maxsize=32)
def _shift_products(shape: tuple[int, int], step: float) -> tuple[np.ndarray, np.ndarray]:
    """(2 LOW, height) and (width, 2 LOW) matrices [D; D S] A and A' [D' (D S)'], where A is the area average to
    THUMB pixels (cv2.resize's INTER_AREA, linear and separable), D the first LOW rows of the orthonormal DCT (as
    cv2.dct) and S a shift by ``step`` thumbnail pixels with linear interpolation and replicated edges (as
    cv2.warpAffine by (step, 0) or (0, step) with INTER_LINEAR and BORDER_REPLICATE): rows @ image @ columns
    holds the low coefficients of the thumbnail (top left), of it shifted along x (top right) and along y (bottom
    left)."""
    shift = np.zeros((THUMB, THUMB))
    for x in range(THUMB):
        source = x - step  # a shift by +step: each pixel comes from step pixels to its left (above)
        left = math.floor(source)
        fraction = source - left
        shift[x, min(max(left, 0), THUMB - 1)] += 1.0 - fraction
        shift[x, min(max(left + 1, 0), THUMB - 1)] += fraction
    dct = _DCT[:LOW]
    both = np.vstack([dct, dct @ shift])
    rows = (both @ _area(shape[0])).astype(np.float32)
    columns = np.ascontiguousarray((both @ _area(shape[1])).T).astype(np.float32)
    rows.setflags(write=False)
    columns.setflags(write=False)
    return rows, columns


def _area(size: int) -> np.ndarray:
    """(THUMB, size): cv2.resize's INTER_AREA from ``size`` pixels to THUMB along one axis, as a matrix."""
    return cv2.resize(np.eye(size, dtype=np.float64), (size, THUMB), interpolation=cv2.INTER_AREA)


def centred(reduced: np.ndarray) -> np.ndarray | None:
    """The centred signature of an 8-bit grey (proof) image; None when it has no foreground."""
    found = foreground(reduced)
    return None if found is None else found[0]


def foreground(reduced: np.ndarray) -> tuple[np.ndarray, tuple[float, float]] | None:
    """The centred signature of an 8-bit grey (proof) image and its foreground's centroid (y, x, in its pixels);
    None when it has no foreground. A copy's centroid moves with its content: the difference of two images'
    centroids is where the proof first tries to lay one onto the other (see proof.prove)."""
    histogram = cv2.calcHist([reduced], [0], None, [256], [0, 256]).ravel()
    background = _median_level(histogram)
    # the deviations' histogram from the levels' (|level - background| folds it), and the foreground weights,
    # max(|level - background| - threshold, 0), by one table look-up
    deviations = _DEVIATIONS[background]
    spread = _median_level(np.bincount(deviations, weights=histogram, minlength=256))
    table = np.maximum(deviations - min(255, 3 * spread + 1), 0).astype(np.uint8)
    moments = cv2.moments(cv2.LUT(reduced, table))
    if moments["m00"] <= 0:
        return None
    cy, cx = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
    radius = float(np.sqrt((moments["mu20"] + moments["mu02"]) / moments["m00"]))
    side = int(min(max(round(WINDOW_RADII * radius), MIN_WINDOW), 2 * max(reduced.shape)))
    window = cv2.getRectSubPix(reduced, (side, side), (cx, cy))  # replicated edges outside the frame
    reduce = _window_low(side)  # the window's THUMB x THUMB area average and its low DCT, as matrix products
    return _unit((reduce @ window.astype(np.float32) @ reduce.T).ravel()[1:]), (cy, cx)


@lru_cache(maxsize=512)
def _window_low(side: int) -> np.ndarray:
    """(LOW, side): D A, the first LOW rows of the orthonormal DCT after an area average from ``side`` to THUMB."""
    matrix = (_DCT[:LOW] @ _area(side)).astype(np.float32)
    matrix.setflags(write=False)
    return matrix


def _dct_matrix(size: int) -> np.ndarray:
    k = np.arange(size)[:, None]
    n = np.arange(size)[None, :]
    matrix = np.sqrt(2.0 / size) * np.cos(np.pi * k * (2 * n + 1) / (2 * size))
    matrix[0] /= np.sqrt(2.0)
    return matrix


_DCT = _dct_matrix(THUMB)


_DEVIATIONS = np.abs(np.arange(256)[None, :] - np.arange(256)[:, None])  # [background, level]: |level - background|
_DEVIATIONS.setflags(write=False)


def _unit(coefficients: np.ndarray) -> np.ndarray:
    norm = float(np.sqrt(coefficients.dot(coefficients)))  # np.linalg.norm's arithmetic, without its Python layer
    return (coefficients / norm).astype(np.float32) if norm > 1e-6 else np.zeros(DIMENSIONS, np.float32)


def _median_level(histogram: np.ndarray) -> int:
    """The level where the histogram's cumulative count reaches half its total (the counts are whole numbers, far
    below 2**24: the last cumulative count is the total, exactly)."""
    cumulative = np.cumsum(histogram)
    return int(np.searchsorted(cumulative, cumulative[-1] / 2))


class SignatureTable:
    """Signatures of kept images by item (with their sensitivities), in one growing array, so that a query's
    candidates are ranked in one vector operation."""

    def __init__(self) -> None:
        self._rows = np.zeros((64, DIMENSIONS), np.float32)
        self.sensitivity = np.zeros(64, np.float32)

    def add(self, item: int, value: np.ndarray | None, sensitivity: float = 0.0) -> None:
        """The signature of ``item`` (None: zeros, at least distance 1 from any unit signature)."""
        if item >= len(self._rows):
            size = max(2 * len(self._rows), item + 1)
            rows = np.zeros((size, DIMENSIONS), np.float32)
            rows[: len(self._rows)] = self._rows
            sensitivities = np.zeros(size, np.float32)
            sensitivities[: len(self.sensitivity)] = self.sensitivity
            self._rows, self.sensitivity = rows, sensitivities
        self._rows[item] = 0.0 if value is None else value
        self.sensitivity[item] = sensitivity

    def distances(self, items: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Squared distances from ``value`` to the signatures of ``items``."""
        difference = self._rows[items] - value
        return np.einsum("ij,ij->i", difference, difference)


FLAT_LIMIT = 4096  # kept signatures searched exhaustively up to this many, by one matrix-vector product


def _vector(value: np.ndarray) -> np.ndarray:
    """One signature as faiss' C calls read it (DIMENSIONS contiguous float32s: they take a bare pointer)."""
    if value.shape != (DIMENSIONS,):
        raise ValueError(f"a signature has {DIMENSIONS} values, not {value.shape}")
    return np.ascontiguousarray(value, np.float32)


class NearestSignatures:
    """The nearest kept signatures (squared L2): exhaustively while there are at most ``flat_limit`` (the exact
    answer; at 3,500 about 30 us a search and nothing to insert, where the graph cost 45 us a search and 34 us an
    insert in a run), then from a graph index (faiss' ``IndexHNSWFlat``, approximate, about the same time whatever
    the run's size; at 28,000 an exhaustive search costs 460 us), built from the signatures held so far."""

    def __init__(self, links: int = 16, breadth: int = 32, flat_limit: int = FLAT_LIMIT,
                 search_breadth: int = 16) -> None:
        # a search's breadth is twice the 8 neighbours asked for, an insert's 32: at 40,000 images the same
        # decisions as with 32 for both, and 0.85 s less searching (5.4 s against 6.25 s)
        self._links, self._breadth, self._flat_limit = links, breadth, flat_limit
        self._search_breadth = search_breadth
        self._rows = np.zeros((256, DIMENSIONS), np.float32)  # the flat phase's signatures and squared norms
        self._norms = np.zeros(256, np.float32)
        self._index = None
        self._items: list[int] = []  # by row: of the flat phase, then of the graph
        self._zeros: list[int] = []  # graph phase: items whose signature is zeros (a flat frame), held beside it
        # the graph's answer buffers (distances, rows) and their pointers for faiss
        self._found: tuple[np.ndarray, np.ndarray, Any, Any] | None = None
        self._pointer = None  # faiss.swig_ptr, once the graph exists

    def __len__(self) -> int:
        return len(self._items) + len(self._zeros)

    def add(self, item: int, value: np.ndarray) -> None:
        if self._index is not None:
            if not value.any():
                # a zero signature lies at distance 1 from every unit one, nearer than most of them are to each
                # other: in the graph it became every node's nearest neighbour, the heuristic that picks a node's
                # links then dropped the others, and searches failed (on random signatures with one zero among
                # 300, 150 of 400 true neighbours found instead of 399)
                self._zeros.append(item)
                return
            self._index.add_c(1, self._pointer(_vector(value)))  # faiss' own add, less its Python wrapper
            self._items.append(item)
            return
        count = len(self._items)
        if count == len(self._rows):
            self._rows = np.concatenate([self._rows, np.zeros_like(self._rows)])
            self._norms = np.concatenate([self._norms, np.zeros_like(self._norms)])
        self._rows[count] = value
        self._norms[count] = float(value @ value)
        self._items.append(item)
        if count + 1 > self._flat_limit:
            zero = self._norms[: count + 1] == 0.0
            self._zeros = [self._items[row] for row in np.flatnonzero(zero).tolist()]
            self._items = [self._items[row] for row in np.flatnonzero(~zero).tolist()]
            self._index = self._graph(self._rows[: count + 1][~zero])
            self._rows, self._norms = self._rows[:0], self._norms[:0]

    def _graph(self, values: np.ndarray):  # type: ignore[no-untyped-def]
        import faiss  # here, not at the top: the worker processes, and runs that never leave the flat phase, never
        # need it

        faiss.omp_set_num_threads(1)  # one query at a time: threads only contend with the workers
        index = faiss.IndexHNSWFlat(DIMENSIONS, self._links)
        index.hnsw.efConstruction = self._breadth
        index.hnsw.efSearch = self._search_breadth
        index.add(np.ascontiguousarray(values))
        self._pointer = faiss.swig_ptr
        return index

    def nearest(self, value: np.ndarray, count: int) -> list[int]:
        total = len(self._items)
        if self._index is None:
            if not total:
                return []
            distances = self._norms[:total] - 2.0 * (self._rows[:total] @ value)  # less |value|^2, the same for all
            if count < total:
                rows = np.argpartition(distances, count - 1)[:count]
                rows = rows[np.lexsort((rows, distances[rows]))]
            else:
                rows = np.lexsort((np.arange(total), distances))
            return [self._items[row] for row in rows.tolist()]
        found: list[tuple[float, int]] = []
        if total:
            # faiss' search_c into buffers of this index's (and their pointers, made once), where its wrapper
            # checked the arguments and allocated two arrays a query (68,000 searches at 40,000 images)
            wanted = min(count, total)
            if self._found is None or self._found[0].size < wanted:
                buffers = np.empty(max(wanted, 32), np.float32), np.empty(max(wanted, 32), np.int64)
                self._found = (*buffers, self._pointer(buffers[0]), self._pointer(buffers[1]))
            distances, rows, at_distances, at_rows = self._found
            self._index.search_c(1, self._pointer(_vector(value)), wanted, at_distances, at_rows, None)
            items = self._items
            if not self._zeros:  # in the graph's order, nearest first (no distance needed to merge)
                return [items[row] for row in rows[:wanted].tolist() if row >= 0]
            found = [(d, items[row]) for d, row in zip(distances[:wanted].tolist(), rows[:wanted].tolist())
                     if row >= 0]
        if self._zeros:  # each at the squared norm of the query, merged in as an exhaustive search would
            norm = float(value @ value)
            found = sorted(found + [(norm, item) for item in self._zeros[:count]])
        return [item for _, item in found[:count]]
