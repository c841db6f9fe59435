"""Perceptual hashes, computed by ``imagehash`` itself so that our hex is exactly what it prints.

The candidate search uses layout and centred signatures of our own (signatures.py); the result's ``hash`` is always
this module's, equal to imagehash's.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import imagehash
import numpy as np
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
    if algorithm == "phash":
        return _phash(grey, hash_size)
    return ALGORITHMS[algorithm](Image.fromarray(grey, mode="L"), hash_size=hash_size)


def _phash(grey: np.ndarray, hash_size: int, highfreq_factor: int = 4) -> imagehash.ImageHash:
    """``imagehash.phash`` step for step, with Pillow's LANCZOS thumbnail computed by ``lanczos_resize`` for a
    square image (the same bytes, at less than half the cost; Pillow's own resize for any other shape, where its
    passes do not always run in the order ours do) and only the DCT coefficients the hash keeps computed, as two
    small matrix products. Those differ from scipy's full DCT in the last bits only, which
    can change a bit of the hash only where a coefficient lies at the median: then scipy's DCT decides, as
    imagehash's does (it is also imported only then: importing scipy costs each process 0.2 s)."""
    size = hash_size * highfreq_factor
    if grey.shape[0] == grey.shape[1]:
        pixels = lanczos_resize(grey, size, size)
    else:
        pixels = np.asarray(Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.LANCZOS))
    basis = _dct_basis(size, hash_size)
    low = basis @ pixels.astype(np.float64) @ basis.T
    median = _median(low)
    if float(np.abs(low - median).min()) <= TIE_MARGIN:
        import scipy.fftpack

        dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=0), axis=1)
        low = dct[:hash_size, :hash_size]
        median = _median(low)
    return imagehash.ImageHash(low > median)


TIE_MARGIN = 1e-4  # grey levels x DCT gain: rounding differences are below 1e-7 for 32x32 8-bit thumbnails


@lru_cache(maxsize=8)
def _dct_basis(size: int, count: int) -> np.ndarray:
    """The first ``count`` rows of scipy.fftpack's unnormalised DCT-II matrix: 2 cos(pi k (2n + 1) / (2 size))."""
    k = np.arange(count, dtype=np.float64)[:, None]
    n = np.arange(size, dtype=np.float64)[None, :]
    basis = 2.0 * np.cos(np.pi * k * (2 * n + 1) / (2 * size))
    basis.setflags(write=False)
    return basis


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
    bits = value.hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big") >> (-bits.size % 8)


def hash_hex(value: imagehash.ImageHash) -> str:
    """``str(value)``, as imagehash prints it (the bits in row order as one number, zero-padded to a hex digit per
    four bits), without its walk over the bits in Python."""
    return f"{hash_to_int(value):0{-(-value.hash.size // 4)}x}"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
