"""Pillow's LANCZOS downscale of an 8-bit grey image, bit for bit, as two matrix products.

``imagehash`` thumbnails every image with ``Image.resize(size, LANCZOS)`` before hashing; for a 248x248 frame that
resize is half of the fingerprint's cost, because Pillow walks the filter taps one by one. Pillow's algorithm
(libImaging/Resample.c) is separable and works in fixed point: per output pixel, integer coefficients scaled by
2**22, a horizontal pass into an 8-bit temporary image, then a vertical pass, each sum started at 2**21, shifted
right by 22 and clipped to 0..255. We compute the same coefficients (same formulas, same double arithmetic, cached
per size pair) and the same integer sums, exactly, as float64 matrix products (every product and partial sum is an
integer far below 2**53). The tests compare the output with Pillow's on real and random images of many sizes.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

PRECISION_BITS = 32 - 8 - 2
_LANCZOS_SUPPORT = 3.0


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def _lanczos(x: float) -> float:
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3)
    return 0.0


@lru_cache(maxsize=64)
def coefficients(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) fixed-point LANCZOS weights, as Pillow's precompute_coeffs + normalize_coeffs_8bpc."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = _LANCZOS_SUPPORT * filterscale
    matrix = np.zeros((out_size, in_size), dtype=np.float64)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        weights = [_lanczos((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        total = 0.0
        for weight in weights:
            total += weight
        for x, weight in enumerate(weights):
            if total != 0.0:
                weight /= total
            scaled = weight * (1 << PRECISION_BITS)
            matrix[xx, xmin + x] = int(-0.5 + scaled) if weight < 0 else int(0.5 + scaled)
    matrix.setflags(write=False)
    return matrix


BAND = 8  # output columns per block of the horizontal pass


@lru_cache(maxsize=64)
def _bands(in_size: int, out_size: int) -> tuple[tuple[int, int, int, np.ndarray], ...]:
    """The horizontal pass's weights cut into blocks of BAND output columns, each with only the input columns its
    filters reach: (first output, first input, last input + 1, weights (inputs, outputs)). A LANCZOS filter reaches
    3 times the scale on each side, so a 248 -> 32 reduction multiplies a third of the dense matrix's zeros."""
    matrix = coefficients(in_size, out_size)
    bands = []
    for first in range(0, out_size, BAND):
        rows = matrix[first : first + BAND]
        reached = np.flatnonzero(np.any(rows != 0, axis=0))
        low, high = (int(reached[0]), int(reached[-1]) + 1) if reached.size else (0, 1)
        weights = np.ascontiguousarray(rows[:, low:high].T)
        weights.setflags(write=False)
        bands.append((first, low, high, weights))
    return tuple(bands)


def _horizontal(image: np.ndarray, out_size: int) -> np.ndarray:
    """``image @ coefficients(width, out_size).T``, block by block: the same sums (every product and partial sum is
    an integer far below 2**53, so the order of the additions does not matter), in two thirds of the time."""
    sums = np.empty((image.shape[0], out_size))
    for first, low, high, weights in _bands(image.shape[1], out_size):
        np.matmul(image[:, low:high], weights, out=sums[:, first : first + weights.shape[1]])
    return sums


def _settle(sums: np.ndarray) -> np.ndarray:
    """Pillow's clip8: (sum + 2**21) >> 22, clipped to 0..255, in place. The sums are integers far below 2**53, so
    sum * 2**-22 + 0.5 is exact (it needs 22 more bits below the point, no more above) and equals
    (sum + 2**21) / 2**22."""
    np.multiply(sums, 1.0 / (1 << PRECISION_BITS), out=sums)
    sums += 0.5
    np.floor(sums, out=sums)
    return np.clip(sums, 0, 255, out=sums)


def lanczos_resize(grey: np.ndarray, width: int, height: int) -> np.ndarray:
    """``np.asarray(Image.fromarray(grey, "L").resize((width, height), Image.Resampling.LANCZOS))``."""
    in_height, in_width = grey.shape
    if (in_width, in_height) == (width, height):
        return grey.copy()
    image = grey.astype(np.float64)
    if width != in_width:  # Pillow skips a pass whose size does not change
        image = _settle(_horizontal(image, width))
    if height != in_height:
        image = _settle(coefficients(in_height, height) @ image)
    return image.astype(np.uint8)
