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
    realdup-dev and the generated sets), which is what lets the grouper skip look-alikes far beyond it."""
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    value = _unit(_low(thumb).ravel()[1:])
    step = max_shift_px * THUMB / (max(grey.shape) * factor)
    moved = 0.0
    for dx, dy in ((step, 0.0), (0.0, step)):
        shifted = cv2.warpAffine(thumb, np.float32([[1, 0, dx], [0, 1, dy]]), (THUMB, THUMB), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        difference = _unit(_low(shifted).ravel()[1:]) - value
        moved = max(moved, float(np.dot(difference, difference)))
    return value, moved


def centred(reduced: np.ndarray) -> np.ndarray | None:
    """The centred signature of an 8-bit grey (proof) image; None when it has no foreground."""
    histogram = cv2.calcHist([reduced], [0], None, [256], [0, 256]).ravel()
    background = _median_level(histogram)
    deviation = cv2.absdiff(reduced, np.full_like(reduced, background))
    spread = _median_level(cv2.calcHist([deviation], [0], None, [256], [0, 256]).ravel())
    weights = cv2.subtract(deviation, np.full_like(deviation, min(255, 3 * spread + 1)))  # foreground only
    moments = cv2.moments(weights)
    if moments["m00"] <= 0:
        return None
    cy, cx = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
    radius = float(np.sqrt((moments["mu20"] + moments["mu02"]) / moments["m00"]))
    side = int(np.clip(round(WINDOW_RADII * radius), MIN_WINDOW, 2 * max(reduced.shape)))
    window = cv2.getRectSubPix(reduced, (side, side), (cx, cy))  # replicated edges outside the frame
    return _unit(_low(cv2.resize(window, (THUMB, THUMB), interpolation=cv2.INTER_AREA)).ravel()[1:])


def _low(thumb: np.ndarray) -> np.ndarray:
    return cv2.dct(thumb.astype(np.float32))[:LOW, :LOW]


def _unit(coefficients: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(coefficients))
    return (coefficients / norm).astype(np.float32) if norm > 1e-6 else np.zeros(DIMENSIONS, np.float32)


def _median_level(histogram: np.ndarray) -> int:
    return int(np.searchsorted(np.cumsum(histogram), histogram.sum() / 2))


class SignatureTable:
    """Signatures of kept images by item (with their sensitivities), in one growing array, so that a query's
    candidates are ranked in one vector operation."""

    def __init__(self) -> None:
        self._rows = np.zeros((64, DIMENSIONS), np.float32)
        self.sensitivity = np.zeros(64, np.float32)

    def add(self, item: int, value: np.ndarray, sensitivity: float = 0.0) -> None:
        if item >= len(self._rows):
            size = max(2 * len(self._rows), item + 1)
            rows = np.zeros((size, DIMENSIONS), np.float32)
            rows[: len(self._rows)] = self._rows
            sensitivities = np.zeros(size, np.float32)
            sensitivities[: len(self.sensitivity)] = self.sensitivity
            self._rows, self.sensitivity = rows, sensitivities
        self._rows[item] = value
        self.sensitivity[item] = sensitivity

    def distances(self, items: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Squared distances from ``value`` to the signatures of ``items``."""
        difference = self._rows[items] - value
        return np.einsum("ij,ij->i", difference, difference)


class NearestSignatures:
    """Approximate nearest kept signatures (faiss ``IndexHNSWFlat``, squared L2)."""

    def __init__(self, links: int = 16, breadth: int = 32) -> None:
        import faiss  # here, not at the top: the worker processes, which import this module too, never need it

        faiss.omp_set_num_threads(1)  # one query at a time: threads only contend with the workers
        self._index = faiss.IndexHNSWFlat(DIMENSIONS, links)
        self._index.hnsw.efConstruction = breadth
        self._index.hnsw.efSearch = breadth
        self._items: list[int] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: int, value: np.ndarray) -> None:
        self._index.add(value.reshape(1, DIMENSIONS))
        self._items.append(item)

    def nearest(self, value: np.ndarray, count: int) -> list[int]:
        if not self._items:
            return []
        _, rows = self._index.search(value.reshape(1, DIMENSIONS), min(count, len(self._items)))
        return [self._items[row] for row in rows[0] if row >= 0]
