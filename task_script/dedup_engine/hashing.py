"""Perceptual hashes, computed by ``imagehash`` itself so that our hex is exactly what it prints.

Besides the image's own hash, small frames also get a *centred* hash: the hash of the image translated so that
its foreground's centroid sits at the centre. On a 40x40 flow-cytometry frame a 3 px shift moves the cell by 7 %
of the frame and scrambles the plain hash (Hamming distance 14-32 of 64 on real data), while the centred hash of
the shifted copy stays close. The centred hash only proposes candidates; the pixel proof decides.
"""

from __future__ import annotations

from typing import Callable

import cv2
import imagehash
import numpy as np
import scipy.fftpack
from PIL import Image

from .resample import lanczos_resize

HashFunction = Callable[..., imagehash.ImageHash]

ALGORITHMS: dict[str, HashFunction] = {
    "phash": imagehash.phash,  # DCT of a 32x32 thumbnail (Zauner 2010, as in imagehash)
    "dhash": imagehash.dhash,  # horizontal gradient signs (Krawetz, "Kind of Like That")
    "ahash": imagehash.average_hash,  # mean threshold of a thumbnail (Krawetz, "Looks Like It")
    "whash": imagehash.whash,  # Haar wavelet low band (Petrov, imagehash)
}

# Frames up to this side get a centred hash too: larger frames barely notice a few pixels of shift.
CENTRED_MAX_SIDE = 96


def perceptual_hash(grey: np.ndarray, algorithm: str, hash_size: int) -> imagehash.ImageHash:
    """The hash of an 8-bit grey image, as ``imagehash.<algorithm>(image, hash_size)`` computes it."""
    if algorithm == "phash" and grey.shape[0] == grey.shape[1]:
        return _phash(grey, hash_size)
    return ALGORITHMS[algorithm](Image.fromarray(grey, mode="L"), hash_size=hash_size)


def _phash(grey: np.ndarray, hash_size: int, highfreq_factor: int = 4) -> imagehash.ImageHash:
    """``imagehash.phash`` step for step, with Pillow's LANCZOS thumbnail computed by ``lanczos_resize`` (the
    same bytes, checked for square images, at less than half the cost)."""
    size = hash_size * highfreq_factor
    pixels = lanczos_resize(grey, size, size)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
    low = dct[:hash_size, :hash_size]
    return imagehash.ImageHash(low > _median(low))


def _median(values: np.ndarray) -> float:
    """``np.median`` (the same float: the middle value, or the mean of the two middle values), without its
    general-purpose machinery, which costs more than the rest of the hash."""
    ordered = np.sort(values, axis=None)
    middle = ordered.size // 2
    if ordered.size % 2:
        return float(ordered[middle])
    return float((ordered[middle - 1] + ordered[middle]) / 2)


def centred_hash(grey: np.ndarray, algorithm: str, hash_size: int) -> imagehash.ImageHash | None:
    """The hash of the image re-centred on its foreground, or None for frames too large to need it."""
    height, width = grey.shape
    if max(height, width) > CENTRED_MAX_SIDE:
        return None
    values = grey.astype(np.float32)
    median = float(np.median(values))
    deviation = np.abs(values - median)
    spread = float(np.median(deviation)) + 1e-3
    weight = np.maximum(deviation - 3.0 * spread, 0.0)  # foreground only: background noise would pull to centre
    total = float(weight.sum())
    if total <= 0.0:
        return perceptual_hash(grey, algorithm, hash_size)
    cy = float((weight.sum(axis=1) * np.arange(height)).sum()) / total
    cx = float((weight.sum(axis=0) * np.arange(width)).sum()) / total
    shift = np.float32([[1, 0, (width - 1) / 2 - cx], [0, 1, (height - 1) / 2 - cy]])
    moved = cv2.warpAffine(values, shift, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return perceptual_hash(np.clip(np.rint(moved), 0, 255).astype(np.uint8), algorithm, hash_size)


def hash_to_int(value: imagehash.ImageHash) -> int:
    """The hash's bits as one integer, most significant first (the same bit order as its hex)."""
    return int(str(value), 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
