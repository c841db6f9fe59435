"""Perceptual hashes, computed by ``imagehash`` itself so that our hex is exactly what it prints.

The candidate search also uses a *centred* hash and layout signatures of our own (signatures.py); the result's
``hash`` is always this module's, equal to imagehash's.
"""

from __future__ import annotations

from typing import Callable

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


def hash_to_int(value: imagehash.ImageHash) -> int:
    """The hash's bits as one integer, most significant first (the same bit order as its hex)."""
    return int(str(value), 16)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
