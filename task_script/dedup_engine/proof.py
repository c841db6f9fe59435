"""The pixel proof: a hash candidate is archived only if its pixels are the kept image's pixels, give or take noise.

Each image gets a *proof image* once, in the worker: its grey view reduced by a whole factor to at most
``PROOF_MAX_SIDE`` a side (so crops of one picture stay on one pixel grid), kept as 8-bit. The candidate is
registered onto the kept image to a fraction of a proof pixel (a shift or crop of up to ``max_shift_px``, or a
whole-frame resize of up to +/-10 %: see registration.py), a gain and offset are fitted (a few percent of
brightness), and the difference over the overlap is low-pass filtered (Gaussian, sigma 1.5 px) before its RMS is
taken.
Sensor noise, JPEG artefacts and resampling error are high-frequency and average out; a different cell, an
adjacent z-slice or a neighbouring field leaves a structured, low-frequency difference that does not. Before any
search, a moved, cropped or resized candidate is laid where its foreground's centroid meets the kept image's (both
computed by the workers): within half the threshold there, the search is not needed (see ``_at_centroids``).

Calibrated on realdup-dev (real microscopy and imaging-flow-cytometry images; bench/calibrate_proof.py): true
copies score at most 0.72 grey levels, distinct non-empty images at least 0.97; the default threshold is 0.75, and
the first false merge appears between 1.0 and 1.25. Frames with almost no content (grey-level standard deviation under ``MIN_CONTENT``)
cannot be told apart from other empty frames by their pixels, so for them only identical pixels count.

Most hash candidates are look-alikes, and a proof costs about half a millisecond, so each proof image also carries
a coarse *envelope* (``lower_bound``): for every 4x4 block of the low-passed image, its mean, and the minimum and
maximum the low-passed image takes within ``max_shift_px`` of the block. Whatever shift the proof would find, each
low-passed candidate pixel must lie within the kept image's envelope, gain and offset applied, up to the residual;
so the RMS of the distance from the candidate's block means to the kept image's block envelopes stays below the
residual (Jensen's inequality per block). It is exact for a given gain and offset; the gain is estimated from the
two images' contrast, so it is a calibrated bound rather than a proven one: on realdup-dev no pair whose proof
passes scores above 0.26 while candidates are rejected only above ``max_residual`` (0.75 by default). A rejection
can only keep an image that a proof would have archived; it never archives anything. A candidate of another frame
size (a crop, a resize) is bounded the same way once its low-passed pixels are laid over the kept image's blocks
(``reshaped_bound``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import cv2
import numpy as np

try:  # ISA-L's deflate: a standard zlib stream, made and read at twice zlib's speed or more
    from isal.isal_zlib import compress as _deflate, decompress as _inflate
except ImportError:  # pragma: no cover - isal is a pinned requirement; zlib reads and writes the same streams
    from zlib import compress as _deflate, decompress as _inflate

from .slotted import reduce_with_arrays, replaced
from .registration import GAIN_RANGE, Prepared, fitted_rms, lowpass, mean_std, physical_scale, register
from .registration import Warp, residual, unmoved_residual

__all__ = ["Envelope", "Prepared", "Proof", "ProofImage", "fitted_rms", "lower_bound", "lower_bounds", "lowpass",
           "prepare", "prove", "reshaped_bound"]

PROOF_MAX_SIDE = 128
MIN_CONTENT = 2.0  # grey levels of standard deviation below which a frame is "empty"
MAX_ASPECT_CHANGE = 0.06
MAX_SCALE = 1.12  # a resize of up to +/-10 %, with room for rounding
RESIZE_RADIUS = 2  # proof pixels of translation searched beyond a resize's centred hypothesis
RESIZE_KERNELS = (cv2.INTER_LANCZOS4, cv2.INTER_AREA)
RESIZE_GIVE_UP = 3.0  # times max_residual: kernels differ by tenths of a grey level, not by this much
ENVELOPE_BLOCK = 4  # proof pixels per envelope block side
ENVELOPE_UNITS = 256  # an envelope's minima and maxima are held in 1/256 grey levels: as uint16, the levels up to
# 255 fit exactly, rounded outwards to a 256th (float16, before, rounded to an eighth at the top of the range)
RESHAPED_MIN_SIDE = 64  # proof pixels: below, no bound across frame sizes (on 40 px frames a 3 px crop moves the
# frame's levels, which the bound's offset starts from, by a tenth or more, and its own border reflection reaches a
# third of it: realdup-dev's crops of 40 px frames bound up to 2.2 against residuals of 0; their proofs cost little)
CROP_EDGE = 6  # proof pixels: the low-pass's reach (13 taps at sigma 1.5), where a crop's border changed it
REFINE_WITHIN = 3.0  # times max_residual: a placement estimated beyond it is not refined (see registration.register)


@dataclass(frozen=True, slots=True)
class ProofImage:
    """What the proof needs of one image: small, so a 40,000-image run fits in memory."""

    data: np.ndarray | bytes  # uint8 grey, reduced by a whole factor; packed (``as_kept``) once kept
    shape: tuple[int, int]  # of the reduced image
    factor: int  # the reduction: one proof pixel is factor x factor original pixels
    content: float  # grey-level standard deviation of the reduced image
    size: tuple[int, int]  # of the frame, original pixels (height, width)
    envelope: Envelope | None = None
    packed: bytes | None = None  # the pixels packed already (by a worker, see ``prepare``), for ``as_kept``

    __reduce__ = reduce_with_arrays  # a part of every fingerprint a worker sends (see slotted.py)

    @property
    def pixels(self) -> np.ndarray:
        """The reduced image, unpacked if need be (about 0.07 ms for 124x124)."""
        return self.data if isinstance(self.data, np.ndarray) else _unpack(self.data, self.shape)

    def as_kept(self, pack: bool = True) -> ProofImage:
        """The proof image as a kept image holds it for the rest of the run: since a kept image is only ever
        compared against, without its own block means, and with ``pack`` its pixels packed losslessly (deflate
        at ISA-L's fastest level: about 46 % of the bytes on camera frames; a 40,000-image run keeps most of its
        images)."""
        envelope = self.envelope
        if envelope is not None and envelope.means is not None:
            envelope = replaced(envelope, means=None)
        data = self.data
        if pack and isinstance(data, np.ndarray):
            data = self.packed if self.packed is not None else _pack(data)
        return replaced(self, data=data, envelope=envelope, packed=None)

    def prepared(self) -> Prepared:
        """The proof image as ``prove`` works on it (float32, with its low-passed versions made once): for an image
        proven against several times in a row, a candidate or a kept image many look-alikes hit."""
        return Prepared(self.pixels.astype(np.float32), self.factor, self.size, self.content)


def _pack(pixels: np.ndarray) -> bytes:
    """A zlib stream of the pixels. ISA-L's level 1 (LZ77 and Huffman, SIMD) packs a 124x124 proof image in about
    60 us and unpacks it in 40, to 46 % of its bytes; zlib's Huffman-only coding of row differences, used before,
    took 130 and 125 us (the cumulative sum included) for 40 %. At 40,000 images that is 7 s of the deciding
    process's time down to 2.3 s, for 26 MB more. (Without ISA-L, zlib's level 1: the same format.)"""
    return _deflate(np.ascontiguousarray(pixels).data, 1)


def _unpack(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(_inflate(data), np.uint8).reshape(shape)


@dataclass(frozen=True, slots=True)
class Envelope:
    """Block statistics of the low-passed proof image for ``lower_bound``: the block means as float16, the minima
    and maxima in ENVELOPE_UNITS of a grey level as uint16, rounded outwards (down and up)."""

    means: np.ndarray | None  # block means (None once kept: only a candidate's block means are used)
    low: np.ndarray  # per block: the minimum within ``radius`` proof pixels of the block, ENVELOPE_UNITS
    high: np.ndarray  # per block: the maximum within ``radius`` proof pixels, ENVELOPE_UNITS
    radius: int  # proof pixels
    mean: float  # of the low-passed image
    std: float

    __reduce__ = reduce_with_arrays


@dataclass(frozen=True, slots=True)
class Proof:
    """The outcome of comparing one candidate with one kept image."""

    passed: bool
    residual: float  # RMS of the low-passed difference, grey levels; inf when no registration was possible
    shift: tuple[float, float]  # translation found beyond the registration's hypothesis, original pixels
    registration: str  # "shift", "resize" or "none"
    reason: str
    refined: bool = True  # False: ``residual`` is registration's whole-pixel estimate, far beyond the threshold


def prepare(grey: np.ndarray, max_shift_px: int = 4, *, pack: bool = False) -> ProofImage:
    """The proof image of an 8-bit grey image: a whole-factor reduction to at most PROOF_MAX_SIDE a side, with
    its envelope for shifts up to ``max_shift_px`` original pixels; with ``pack``, its pixels packed too (a worker
    does this in a large run, where most kept images are held packed, so the deciding process need not)."""
    # a whole factor that leaves at least one pixel on the short side (a 2x2000 strip is reduced by 2, not 17)
    factor = max(1, min(math.ceil(max(grey.shape) / PROOF_MAX_SIDE), min(grey.shape)))
    if factor > 1:
        height, width = grey.shape[0] // factor, grey.shape[1] // factor
        reduced = cv2.resize(grey[: height * factor, : width * factor], (width, height), interpolation=cv2.INTER_AREA)
    else:
        reduced = np.ascontiguousarray(grey)
    radius = math.ceil(max_shift_px / factor)
    return ProofImage(reduced, reduced.shape, factor, float(cv2.meanStdDev(reduced)[1][0, 0]), grey.shape,
                      envelope(reduced, radius), _pack(reduced) if pack else None)


def envelope(reduced: np.ndarray, radius: int) -> Envelope | None:
    height, width = reduced.shape[0] // ENVELOPE_BLOCK, reduced.shape[1] // ENVELOPE_BLOCK
    margin = math.ceil(radius / ENVELOPE_BLOCK)
    if min(height, width) - 2 * margin < 2:
        return None
    filtered = lowpass(reduced.astype(np.float32))
    # min (max) over a block of the min (max) within ``radius``: one erosion (dilation) with a kernel of the block
    # plus the radius, anchored so that sampling every ENVELOPE_BLOCK-th pixel gives the blocks
    kernel = _square(2 * radius + ENVELOPE_BLOCK)
    anchor = (radius, radius)
    step = (slice(0, height * ENVELOPE_BLOCK, ENVELOPE_BLOCK), slice(0, width * ENVELOPE_BLOCK, ENVELOPE_BLOCK))
    # in ENVELOPE_UNITS (scaling by a power of two is exact), rounded outwards: the envelope only widens
    low = np.floor(cv2.erode(filtered, kernel, anchor=anchor)[step] * ENVELOPE_UNITS)
    high = np.ceil(cv2.dilate(filtered, kernel, anchor=anchor)[step] * ENVELOPE_UNITS)
    means = cv2.resize(filtered[: height * ENVELOPE_BLOCK, : width * ENVELOPE_BLOCK], (width, height),
                       interpolation=cv2.INTER_AREA)
    mean, std = mean_std(filtered)
    # a low-passed 8-bit image lies within 0..255 (the filter's weights are positive and sum to 1), so both fit
    # uint16 exactly; the clip only guards the conversion
    return Envelope(means.astype(np.float16), np.clip(low, 0, 65535).astype(np.uint16),
                    np.clip(high, 0, 65535).astype(np.uint16), radius, mean, std)


@lru_cache(maxsize=8)
def _square(size: int) -> np.ndarray:
    """The erosion's and dilation's kernel: a size x size square."""
    kernel = np.ones((size, size), np.uint8)
    kernel.setflags(write=False)
    return kernel


def lower_bound(kept: ProofImage, candidate: ProofImage, *, max_shift_px: int) -> float:
    """A cheap estimate from below of the residual ``prove`` would find (see the module notes); 0.0 when it
    does not apply (images of different shapes, near-empty frames, frames too small for blocks)."""
    a, b = kept.envelope, candidate.envelope
    if a is None or b is None or b.means is None or kept.shape != candidate.shape:
        return 0.0
    needed = math.ceil(max_shift_px / max(kept.factor, candidate.factor))
    if a.radius < needed or a.std < 1e-3:
        return 0.0
    margin = math.ceil(a.radius / ENVELOPE_BLOCK)
    inner = (slice(margin, a.low.shape[0] - margin), slice(margin, a.low.shape[1] - margin))
    gain = min(max(b.std / a.std, GAIN_RANGE[0]), GAIN_RANGE[1])
    means = b.means[inner].astype(np.float32)
    low = a.low[inner].astype(np.float32) * (gain / ENVELOPE_UNITS)
    high = a.high[inner].astype(np.float32) * (gain / ENVELOPE_UNITS)
    offset = b.mean - gain * a.mean
    for _ in range(3):  # towards the offset that minimises the distance
        offset += float((np.maximum(means - high - offset, 0.0) - np.maximum(low + offset - means, 0.0)).mean())
    distance = np.maximum(np.maximum(means - high - offset, low + offset - means), 0.0)
    return math.sqrt(float((distance * distance).mean()))


def reshaped_bound(kept: ProofImage, candidate: ProofImage, smooth: np.ndarray, *, max_shift_px: int) -> float:
    """``lower_bound`` for a candidate of another frame size than the kept image (``smooth``: the candidate's
    low-passed proof image, ``Prepared.smooth``): the smaller of the bounds of the registrations ``prove`` would
    try. A crop or shift: the candidate's blocks taken with the frames' centres aligned (a crop of up to
    ``max_shift_px`` a side moves them by at most the envelope's radius). A resize: the candidate resampled onto
    the kept image's grid (bilinear, centres aligned; the low-passed image varies slowly). Each with the gain from
    the frames' contrasts and with 1, the smaller counting (a crop changes a frame's contrast as a gain would:
    measured up to 0.59 against a residual of 0 with the contrasts' gain alone, on the fundus tile cropped by 3 px).
    Calibrated as the shape-equal bound is (see the module notes): no true pair of realdup-dev bounds above 0.17,
    and no pair whose proof passed at 40,000 generated images above 0.14. 0.0 where no bound is known (frames under
    RESHAPED_MIN_SIDE, too few blocks inside both, other reduction factors), or where neither registration applies
    (``prove`` then fails at once)."""
    a, b = kept.envelope, candidate.envelope
    if a is None or b is None or a.std < 1e-3 or kept.factor != candidate.factor or kept.shape == candidate.shape \
            or a.radius < math.ceil(max_shift_px / kept.factor) \
            or min(*kept.shape, *candidate.shape) < RESHAPED_MIN_SIDE:
        return 0.0
    crop = _crop_possible(kept.size, candidate.size, max_shift_px)
    resize = _resize_possible(kept.size, candidate.size)
    if not crop and not resize:
        return 0.0
    blocks_high, blocks_wide = a.low.shape
    margin = math.ceil(a.radius / ENVELOPE_BLOCK)
    # one set of the kept image's blocks for both registrations: inside its margin and, for a crop, inside both
    # frames with the centres aligned, less CROP_EDGE pixels inside either image's edges (where its low-pass
    # reflected its own border: the cropped one's differs there from the other's)
    dy, dx = (kept.shape[0] - smooth.shape[0]) // 2, (kept.shape[1] - smooth.shape[1]) // 2
    if crop:
        edge = max(margin, -(-CROP_EDGE // ENVELOPE_BLOCK))
        rows = (max(edge, -(-(dy + CROP_EDGE) // ENVELOPE_BLOCK)),
                min(blocks_high - edge, (smooth.shape[0] + dy - CROP_EDGE) // ENVELOPE_BLOCK))
        cols = (max(edge, -(-(dx + CROP_EDGE) // ENVELOPE_BLOCK)),
                min(blocks_wide - edge, (smooth.shape[1] + dx - CROP_EDGE) // ENVELOPE_BLOCK))
    else:
        rows, cols = (margin, blocks_high - margin), (margin, blocks_wide - margin)
    if rows[1] - rows[0] < 2 or cols[1] - cols[0] < 2:
        return 0.0  # too few blocks: no bound
    size = (cols[1] - cols[0], rows[1] - rows[0])
    hypotheses = []  # the candidate's block means on those blocks as each registration lays it (an area reduction
    # by the block side: exact block means)
    if crop:
        hypotheses.append(cv2.resize(smooth[rows[0] * ENVELOPE_BLOCK - dy : rows[1] * ENVELOPE_BLOCK - dy,
                                            cols[0] * ENVELOPE_BLOCK - dx : cols[1] * ENVELOPE_BLOCK - dx],
                                     size, interpolation=cv2.INTER_AREA))
    if resize:
        resampled = cv2.resize(smooth, (kept.shape[1], kept.shape[0]), interpolation=cv2.INTER_LINEAR)
        hypotheses.append(cv2.resize(resampled[rows[0] * ENVELOPE_BLOCK : rows[1] * ENVELOPE_BLOCK,
                                               cols[0] * ENVELOPE_BLOCK : cols[1] * ENVELOPE_BLOCK],
                                     size, interpolation=cv2.INTER_AREA))
    count = 2 * len(hypotheses)  # each with the contrasts' gain and with 1
    means = np.empty((count, size[1], size[0]), np.float32)
    means[0::2] = means[1::2] = hypotheses
    low = np.empty_like(means)
    high = np.empty_like(means)
    low[:] = a.low[rows[0] : rows[1], cols[0] : cols[1]]
    high[:] = a.high[rows[0] : rows[1], cols[0] : cols[1]]
    deviations = np.array([a.std, b.std] * len(hypotheses), np.float32)  # b's own for a gain of 1
    return float(_outside_rms(means, b.mean, b.std, low, high, np.full(count, a.mean, np.float32),
                              deviations).min())


def lower_bounds(kept: Sequence[ProofImage], candidate: ProofImage, *, max_shift_px: int) -> np.ndarray:
    """``lower_bound`` of the candidate against each kept image of its shape, computed for all of them in one pass
    (the same arithmetic on stacked blocks); 0.0 where it does not apply (see ``lower_bound``)."""
    bounds = np.zeros(len(kept))
    b = candidate.envelope
    if b is None or b.means is None:
        return bounds
    groups: dict[int, list[int]] = {}
    for row, image in enumerate(kept):
        a = image.envelope
        if image.shape == candidate.shape and a is not None and a.std >= 1e-3 and a.radius >= math.ceil(
            max_shift_px / max(image.factor, candidate.factor)
        ):
            groups.setdefault(a.radius, []).append(row)
    for radius, rows in groups.items():
        margin = math.ceil(radius / ENVELOPE_BLOCK)
        inner = (slice(margin, b.means.shape[0] - margin), slice(margin, b.means.shape[1] - margin))
        means = b.means[inner].astype(np.float32)
        low = np.empty((len(rows), *means.shape), np.float32)  # filled envelope by envelope: np.stack and a
        high = np.empty_like(low)  # conversion after it cost twice as much
        levels = np.empty((2, len(rows)), np.float32)  # means and standard deviations
        for place, row in enumerate(rows):
            a = kept[row].envelope
            low[place] = a.low[inner]
            high[place] = a.high[inner]
            levels[:, place] = a.mean, a.std
        bounds[rows] = _outside_rms(means, b.mean, b.std, low, high, levels[0], levels[1])
    return bounds


def _outside_rms(means: np.ndarray, b_mean: float, b_std: float, low: np.ndarray, high: np.ndarray,
                 a_mean: np.ndarray, a_std: np.ndarray) -> np.ndarray:
    """RMS distance of one image's block means (H, W; or one set for each envelope, k, H, W) from each of k
    envelopes (k, H, W; in ENVELOPE_UNITS, float32, both overwritten), gain from the contrasts and offset fitted,
    as in ``lower_bound``. With the block means less the offset, m, the distance outside [low, high] is
    m - clip(m, low, high) (signed: the offset's step is its mean), which takes a third of the array operations of
    the two one-sided distances. The arithmetic is ``np.mean``'s
    (a float64 ``np.add.reduce`` over each envelope, then a division), in place and without its Python layer (70 ->
    53 us for six envelopes of 29 x 29 blocks)."""
    gain = np.minimum(np.maximum(b_std / a_std, GAIN_RANGE[0]), GAIN_RANGE[1]).astype(np.float32)
    scale = (gain / np.float32(ENVELOPE_UNITS))[:, None, None]
    np.multiply(low, scale, out=low)
    np.multiply(high, scale, out=high)
    shifted = (means if means.ndim == 3 else means[None]) - (np.float32(b_mean) - gain * a_mean)[:, None, None]
    outside = np.empty_like(shifted)
    count = means.shape[-2] * means.shape[-1]
    for step in range(4):
        np.maximum(shifted, low, out=outside)
        np.minimum(outside, high, out=outside)
        np.subtract(shifted, outside, out=outside)
        if step == 3:
            break
        drift = np.add.reduce(outside, axis=(1, 2), dtype=np.float64) / count  # towards the best offset
        np.subtract(shifted, drift.astype(np.float32)[:, None, None], out=shifted)
    np.multiply(outside, outside, out=outside)
    return np.sqrt(np.add.reduce(outside, axis=(1, 2), dtype=np.float64) / count)


def prove(kept: ProofImage | Prepared, candidate: ProofImage | Prepared, *, max_residual: float,
          max_shift_px: int, centroids: tuple[tuple[float, float], tuple[float, float]] | None = None) -> Proof:
    """Pass only if the candidate is the kept image, registered (see registration.py), within ``max_residual``.
    ``centroids``, if known, are the kept image's and the candidate's foreground centroids (proof pixels, see
    signatures.foreground): see ``_at_centroids``."""
    if kept.content < MIN_CONTENT or candidate.content < MIN_CONTENT:
        return Proof(False, float("inf"), (0.0, 0.0), "none", "near-empty frame: only identical pixels count")
    a, b = _prepared(kept), _prepared(candidate)
    (kh, kw), (ch, cw) = a.size, b.size
    best: tuple[float, tuple[float, float], str, bool] = (float("inf"), (0.0, 0.0), "none", True)
    same = a.pixels.shape == b.pixels.shape and a.factor == b.factor and (kh, kw) == (ch, cw)
    if centroids is not None and a.factor == b.factor and _crop_possible(a.size, b.size, max_shift_px):
        value, shift = _at_centroids(a, b, centroids, max_shift_px, same)
        if value <= max_residual / 2:
            return Proof(True, value, shift, "shift", f"aligned by shift ({shift[0]:g}, {shift[1]:g}) px, where the "
                                                      f"foreground centroids meet, low-passed residual {value:.2f} "
                                                      f"within {max_residual:g}")
    if same:
        # most copies are not moved at all (re-encoded, brightened, noisier): where the frames line up within
        # half the threshold as they are, no search could make the proof pass more surely
        value = unmoved_residual(a, b)
        if value <= max_residual / 2:
            return Proof(True, value, (0.0, 0.0), "shift", f"aligned as they are, low-passed residual {value:.2f} "
                                                          f"within {max_residual:g}")
    if _crop_possible(a.size, b.size, max_shift_px):
        swap, target, moving, radius = _shift_frames(a, b, max_shift_px)
        best = min(best, _registered(target, physical_scale(target, moving), radius, swap, "shift",
                                      max_residual))
    if best[0] > max_residual and _resize_possible(a.size, b.size):
        # a resize: the larger image resampled onto the smaller one's grid, centres aligned
        swap = kh * kw > ch * cw
        target, moving = (b, a) if swap else (a, b)
        for kernel in RESIZE_KERNELS:
            resampled = moving.resampled(target.pixels.shape, target.factor, kernel)
            if centroids is not None and kernel == RESIZE_KERNELS[0]:
                value, shift = _resized_at_centroids(target, moving, resampled, centroids, swap)
                if value <= max_residual / 2:
                    return Proof(True, value, shift, "resize", f"aligned by resize and shift ({shift[0]:g}, "
                                                               f"{shift[1]:g}) px, where the foreground centroids "
                                                               f"meet, low-passed residual {value:.2f} within "
                                                               f"{max_residual:g}")
            found = _registered(target, resampled, RESIZE_RADIUS, swap, "resize", max_residual)
            best = min(best, found)
            if found[0] <= max_residual / 2 or found[0] > RESIZE_GIVE_UP * max_residual:
                break  # good enough; or so far off that another kernel's resampling error will not close the gap
    residual, shift, registration, refined = best
    if registration == "none" or not np.isfinite(residual):
        return Proof(False, float("inf"), (0.0, 0.0), "none", "sizes differ beyond a shift, crop or resize")
    if not refined:  # never a pass: an estimate is only ever made, and kept, beyond REFINE_WITHIN x the threshold
        return Proof(False, residual, shift, registration,
                     f"nearest placement by {registration} ({shift[0]:g}, {shift[1]:g}) px: low-passed difference "
                     f"about {residual:.2f} there (whole pixels, gain fitted), over {REFINE_WITHIN:g}x "
                     f"{max_residual:g}: not refined", refined=False)
    passed = residual <= max_residual
    verdict = "within" if passed else "above"
    reason = (f"aligned by {registration} ({shift[0]:g}, {shift[1]:g}) px, low-passed residual {residual:.2f} "
              f"{verdict} {max_residual:g}")
    return Proof(passed, residual, shift, registration, reason)


CENTROID_MOVED = 0.25  # proof pixels: frames of one size whose centroids lie closer are tried as they are


def _at_centroids(a: Prepared, b: Prepared, centroids: tuple[tuple[float, float], tuple[float, float]],
                  max_shift_px: int, same: bool) -> tuple[float, tuple[float, float]]:
    """The residual with the candidate laid where its foreground's centroid meets the kept image's, and that
    translation as ``_registered`` reports it; inf where that placement is not one the registration could find
    (beyond its search range), or where frames of one size are not moved (the check as they are covers them).

    A shift or a crop moves a copy's content, and its foreground's centroid with it (noise, re-encoding or a cell
    at the frame's edge move the centroid a little, sometimes more): of 300 moved same-size copies and 300 crops
    from the 40,000-image generated set, 231 and 175 lie within half the threshold there, at 90 us a pair, where
    the proof's check as they are, transforms and sub-pixel fit took about 400. The residual is the proof's own, at a
    placement within the registration's range; ``prove`` takes it only within half the threshold, as the
    registration stops at such a placement (``enough``), and otherwise searches as before and forgets it: a
    placement better than the registration's own, kept as a result, would lower the residuals of distinct images
    below those the threshold was calibrated on (one realdup-dev pair of distinct cells scores 0.74 at its
    centroids, against 0.97 and more by the registration)."""
    missed = (float("inf"), (0.0, 0.0))
    (ky, kx), (cy, cx) = centroids
    swap, target, moving, radius = _shift_frames(a, b, max_shift_px)  # the frames and range of prove's search
    # target pixel (y, x) lies on moving pixel (y + ty, x + tx): where the moving image's centroid is
    ty, tx = (ky - cy, kx - cx) if swap else (cy - ky, cx - kx)
    if same and max(abs(ty), abs(tx)) < CENTROID_MOVED:
        return missed
    # the registration's range: a template less ``radius`` on each side, over every window of the target
    extra_y = target.pixels.shape[0] - moving.pixels.shape[0]
    extra_x = target.pixels.shape[1] - moving.pixels.shape[1]
    if not (-(radius + extra_y) <= ty <= radius and -(radius + extra_x) <= tx <= radius):
        return missed
    warp = Warp(ty, tx)
    return residual(target.pixels, moving.pixels, warp), _reported_shift(warp, target.factor, swap)


def _resized_at_centroids(target: Prepared, moving: Prepared, resampled: Prepared,
                          centroids: tuple[tuple[float, float], tuple[float, float]], swap: bool
                          ) -> tuple[float, tuple[float, float]]:
    """``_at_centroids`` for a resize: the moving image resampled onto the target's grid (``resampled``, centres
    aligned as OpenCV's resize aligns them), laid where its foreground's centroid, carried through that
    resampling, meets the target's; inf beyond the resize registration's range (RESIZE_RADIUS)."""
    kept_at, candidate_at = centroids
    target_at, moving_at = (candidate_at, kept_at) if swap else (kept_at, candidate_at)
    (th, tw), (mh, mw) = target.pixels.shape, moving.pixels.shape
    ty = (moving_at[0] + 0.5) * th / mh - 0.5 - target_at[0]
    tx = (moving_at[1] + 0.5) * tw / mw - 0.5 - target_at[1]
    if abs(ty) > RESIZE_RADIUS or abs(tx) > RESIZE_RADIUS:
        return float("inf"), (0.0, 0.0)
    warp = Warp(ty, tx)
    return residual(target.pixels, resampled.pixels, warp), _reported_shift(warp, target.factor, swap)


def _shift_frames(a: Prepared, b: Prepared, max_shift_px: int) -> tuple[bool, Prepared, Prepared, int]:
    """How a shift or a crop is registered: the larger frame is the target, so that the smaller one's inside fits
    in it (``swap``: the candidate, ``b``, is the target), and the search radius in target pixels (one more than
    ``max_shift_px``: the sub-pixel fit needs both neighbours)."""
    swap = a.size[0] * a.size[1] < b.size[0] * b.size[1]
    target, moving = (b, a) if swap else (a, b)
    return swap, target, moving, math.ceil(max_shift_px / target.factor) + 1


def _crop_possible(kept: tuple[int, int], candidate: tuple[int, int], max_shift_px: int) -> bool:
    """Frame sizes (height, width) that a shift or a crop of up to ``max_shift_px`` a side can relate."""
    return abs(kept[0] - candidate[0]) <= 2 * max_shift_px and abs(kept[1] - candidate[1]) <= 2 * max_shift_px


def _resize_possible(kept: tuple[int, int], candidate: tuple[int, int]) -> bool:
    """Frame sizes (height, width) that a resize can relate: other sizes, nearly the same aspect, a scale within
    MAX_SCALE."""
    (kh, kw), (ch, cw) = kept, candidate
    return (kh, kw) != (ch, cw) and abs(kh / kw - ch / cw) <= MAX_ASPECT_CHANGE * (kh / kw) \
        and 1 / MAX_SCALE <= math.sqrt(kh * kw / (ch * cw)) <= MAX_SCALE


def _prepared(image: ProofImage | Prepared) -> Prepared:
    return image if isinstance(image, Prepared) else image.prepared()


def _registered(target: Prepared, moving: Prepared, radius: int, swap: bool, kind: str, max_residual: float
                ) -> tuple[float, tuple[float, float], str, bool]:
    """The best registration's residual, its translation in frame pixels as the candidate moved, to a tenth, its
    kind, and whether it was refined (False: only estimated, beyond REFINE_WITHIN times the threshold). A
    placement within half the threshold ends the search: the proof passes whatever the others give."""
    found = register(target, moving, radius, subpixel=target.factor > 1, enough=max_residual / 2,
                     give_up=REFINE_WITHIN * max_residual)
    if not found:
        return float("inf"), (0.0, 0.0), "none", True
    value, warp, refined = found[0]
    return value, _reported_shift(warp, target.factor, swap), kind, refined


def _reported_shift(warp: Warp, factor: int, swap: bool) -> tuple[float, float]:
    """A placement's translation in frame pixels as the candidate moved, to a tenth (``swap``: the candidate was
    the target)."""
    sign = factor * (1.0 if swap else -1.0)
    return round(sign * warp.ty, 1) + 0.0, round(sign * warp.tx, 1) + 0.0
