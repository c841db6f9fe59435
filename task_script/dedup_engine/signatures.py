"""Continuous signatures of an image's coarse layout, to rank the candidates that the hash index finds.

On look-alike frames (one cell on an even background, the CytPix's), hundreds of kept images lie within a few bits
of any new image's 64-bit hash, and the Hamming distance, an integer from 0 to 10 there, does not tell the image a
copy was made from from its look-alikes. The real-valued coefficients that the hash only takes the signs of do:
a signature is the lowest 8x8 DCT coefficients of a 32x32 area-averaged thumbnail (the DC term dropped, so an
offset does not count), scaled to unit length (so a gain does not count). The squared distance between two
signatures, 0 for identical layouts and up to 4, ranks candidates so that the proof sees the likely original
first. A signature only orders candidates; it never decides anything.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMB = 32
LOW = 8
DIMENSIONS = LOW * LOW - 1


def signature(grey: np.ndarray) -> np.ndarray:
    """The signature of an 8-bit grey image (float32, unit length; zeros for a flat image)."""
    thumb = cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)
    coefficients = cv2.dct(thumb)[:LOW, :LOW].ravel()[1:]
    norm = float(np.linalg.norm(coefficients))
    return coefficients / norm if norm > 1e-6 else np.zeros(DIMENSIONS, np.float32)


class SignatureTable:
    """Signatures of kept images by item, in one growing array, so that a query's candidates are ranked in one
    vector operation."""

    def __init__(self) -> None:
        self._rows = np.zeros((64, DIMENSIONS), np.float32)
        self._count = 0

    def add(self, item: int, value: np.ndarray) -> None:
        if item >= len(self._rows):
            grown = np.zeros((max(2 * len(self._rows), item + 1), DIMENSIONS), np.float32)
            grown[: len(self._rows)] = self._rows
            self._rows = grown
        self._rows[item] = value
        self._count = max(self._count, item + 1)

    def distances(self, items: np.ndarray, value: np.ndarray) -> np.ndarray:
        """Squared distances from ``value`` to the signatures of ``items``."""
        difference = self._rows[items] - value
        return np.einsum("ij,ij->i", difference, difference)
