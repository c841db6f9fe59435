"""Registration: where the candidate's proof pixels lie on the target's proof grid, to a fraction of a pixel.

A proof image is its frame reduced by a whole factor (see proof.py), so a copy shifted by one frame pixel is shifted
by half a proof pixel, and a copy cropped by an odd number of pixels sits on another half-pixel grid. A resized
copy has its own scale. Whole-pixel registration cannot line these up, and what it leaves over is a structured
difference that the low-pass does not remove. So registration is done in two steps:

1. the scale, from the geometry alone: for a shift or a crop the two frames have one physical scale (the moving
   image is resampled only when the two reductions differ); for a whole-frame resize the moving image is resampled
   onto the target's grid, centres aligned as Pillow and OpenCV resize (Lanczos, then area averaging: the kernel the
   copy was made with is unknown, and at full resolution the difference between kernels can exceed the
   threshold);
2. the translation left over, within a small window: every placement is scored by the mean squared difference of
   the low-passed images with their offset taken out (the proof's own criterion, gain aside), and the sub-pixel
   minimum comes from a quadratic fitted to the scores around the best placements. Normalised correlation is not
   used: on one-directional structure (a vessel, a gradient) it has a flat ridge and picks a wrong place on it.

Sub-pixel translations are searched only where the proof image is a reduction (factor 2 or more), where they are
what a whole-pixel shift of the frame becomes. At full resolution, copies are shifted by whole pixels, and the
extra freedom would only bring distinct look-alike cells closer (on realdup-dev the closest distinct pair of 40x40
cells falls from 0.97 to 0.72 grey levels with it, against 0.75).

The residual is then taken as before: the moving image resampled at the found translation (bicubic; at a
whole-pixel translation, plain slicing), a gain and offset fitted, the difference low-pass filtered (Gaussian, sigma
1.5 proof pixels, which also removes what the resampling leaves at high frequencies) and its RMS taken over the
overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

import cv2
import numpy as np

LOWPASS_SIGMA = 1.5
MIN_OVERLAP = 0.75  # share of the smaller image that must overlap after registration
GAIN_RANGE = (0.9, 1.1)
PEAKS_EVALUATED = 3
SNAP = 0.05  # a sub-pixel part this small is taken as a whole-pixel translation (exact, no resampling)


def lowpass(image: np.ndarray) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), LOWPASS_SIGMA, borderType=cv2.BORDER_REFLECT)


@dataclass(slots=True)
class Prepared:
    """A proof image as a proof works on it: float32 pixels, and what registration needs of it, made once (an
    image is proven against several times in a row: a candidate against its few nearest kept images, a kept image
    against the look-alikes that keep hitting it)."""

    pixels: np.ndarray  # float32
    factor: int
    size: tuple[int, int]  # of the frame, original pixels (height, width)
    content: float  # grey-level standard deviation
    _smooth: np.ndarray | None = field(default=None, repr=False)
    _sums: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _spectra: dict[tuple[int, int, int], tuple[np.ndarray, float, float, float]] = field(default_factory=dict,
                                                                                         repr=False)

    def smooth(self) -> np.ndarray:
        if self._smooth is None:
            self._smooth = lowpass(self.pixels)
        return self._smooth

    def window_sums(self) -> tuple[np.ndarray, np.ndarray]:
        """Integral images (float64) of the low-passed image and of its square: any window's sums in O(1)."""
        if self._sums is None:
            sums, squares = cv2.integral2(self.smooth(), sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
            self._sums = (sums, squares)
        return self._sums

    def spectrum(self, radius: int, size: tuple[int, int]) -> tuple[np.ndarray, float, float, float]:
        """The DFT (float32, OpenCV's packed form) at ``size`` of the low-passed image less its mean, zero-padded
        (radius 0), or of its template (the low-passed image less ``radius`` pixels on each side, less its mean,
        zero-padded), with the template's sum, sum of squares (both float64) and mean. The means are taken out so
        that float32 transforms keep the cross term exact enough: it is then the product of deviations of a few grey
        levels, not of levels near 100 (residuals within 7e-6 of float64 transforms, in 83 % of their time)."""
        key = (radius, *size)
        found = self._spectra.get(key)
        if found is None:
            smooth = self.smooth()
            part = smooth[radius : smooth.shape[0] - radius, radius : smooth.shape[1] - radius] if radius else smooth
            total = float(cv2.sumElems(part)[0])
            mean = total / part.size
            padded = cv2.copyMakeBorder(part - np.float32(mean), 0, size[0] - part.shape[0], 0,
                                        size[1] - part.shape[1], cv2.BORDER_CONSTANT, value=0.0)
            found = (cv2.dft(padded), total, float(cv2.norm(part, cv2.NORM_L2SQR)), mean)
            self._spectra[key] = found
        return found

    def resampled(self, shape: tuple[int, int], factor: int, kernel: int = cv2.INTER_LANCZOS4) -> Prepared:
        """This image on another grid of ``shape`` (height, width) proof pixels of ``factor`` frame pixels,
        centres aligned (OpenCV's convention, which is Pillow's)."""
        pixels = cv2.resize(self.pixels, (shape[1], shape[0]), interpolation=kernel)
        return Prepared(pixels, factor, self.size, self.content)


@dataclass(frozen=True, slots=True)
class Warp:
    """A translation: target proof pixel (y, x) lies on moving proof coordinates (y + ty, x + tx)."""

    ty: float
    tx: float

    @property
    def integral(self) -> bool:
        return self.ty == round(self.ty) and self.tx == round(self.tx)


def physical_scale(target: Prepared, moving: Prepared) -> Prepared:
    """The moving image at the target's scale, for a shift or a crop: itself when both have one reduction factor,
    otherwise resampled by the ratio of the factors."""
    if moving.factor == target.factor:
        return moving
    ratio = moving.factor / target.factor
    shape = (max(1, round(moving.pixels.shape[0] * ratio)), max(1, round(moving.pixels.shape[1] * ratio)))
    return moving.resampled(shape, target.factor)


class Placement(NamedTuple):
    """One registration: its residual and translation. ``refined`` is False for a placement whose whole-pixel
    estimate (see ``register``) was beyond ``give_up``: its residual is then that estimate, not a measurement."""

    residual: float
    warp: Warp
    refined: bool = True


def register(target: Prepared, moving: Prepared, radius: int, *, subpixel: bool, enough: float = -1.0,
             give_up: float = math.inf) -> list[Placement]:
    """Residuals of the best few translations of ``moving`` onto ``target`` within ``radius`` target pixels
    around their top-left corners (plus the difference of their sizes), best first; empty when the images cannot
    overlap enough. Placements are tried best score first, and once one's residual is ``enough`` or less the
    others are not (each costs a resampling and a low-pass). A placement whose whole-pixel estimate (the RMS
    difference of the low-passed images there, gain and offset fitted) exceeds ``give_up`` is not refined; if
    none is left, the best estimate is returned, marked as not refined."""
    b = moving.smooth()
    th, tw = b.shape[0] - 2 * radius, b.shape[1] - 2 * radius
    a = target.smooth()
    if th < 8 or tw < 8 or th > a.shape[0] or tw > a.shape[1]:
        return []
    msd, window_var, template_var = _offset_free_msd(target, moving, radius)
    results: list[Placement] = []
    estimates: list[Placement] = []
    for oy, ox in _peaks(-msd):
        if math.isfinite(give_up):
            estimate = _fitted_estimate(float(window_var[oy, ox]), template_var, float(msd[oy, ox]))
            if estimate > give_up:
                estimates.append(Placement(estimate, Warp(float(radius - oy), float(radius - ox)), False))
                continue
        fy, fx = _vertex(msd, oy, ox) if subpixel else (0.0, 0.0)
        # the template's corner, moving pixel (radius, radius), lies on target pixel (oy + fy, ox + fx)
        warp = Warp(radius - _snap(oy + fy), radius - _snap(ox + fx))
        results.append(Placement(residual(target.pixels, moving.pixels, warp), warp))
        if results[-1].residual <= enough:
            break
    if not results and estimates:
        return [min(estimates, key=lambda placement: placement.residual)]
    results.sort(key=lambda placement: placement.residual)
    return results


def _fitted_estimate(window_var: float, template_var: float, msd: float) -> float:
    """RMS of template - (gain * window + offset), gain fitted within GAIN_RANGE, from the offset-free mean
    squared difference ``msd`` of the two (var(w) + var(t) - 2 cov(w, t)) and their variances."""
    covariance = (window_var + template_var - msd) / 2
    gain = _fitted_gain(covariance, window_var)
    return math.sqrt(max(template_var - 2 * gain * covariance + gain * gain * window_var, 0.0))


def _offset_free_msd(target: Prepared, moving: Prepared, radius: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean squared difference between the moving image's template (its low-passed image less ``radius`` pixels
    on each side) and each window of the target's low-passed image, their mean difference taken out (an offset is
    fitted by the proof too): the proof's own criterion, gain aside, at every placement; with the variance of
    each window and of the template.

    The cross term is one product of DFTs, each image's made once (``Prepared.spectrum``): OpenCV's matchTemplate
    transforms both images again on every call, which cost nine tenths of a registration. The padded size needs
    no room for wrapping: a window's rows run from its offset to at most the target's last row, inside the
    transform. The transforms are float32, of the images less their means (see ``Prepared.spectrum``); the window
    sums come from integral images, and the rest is float64."""
    a = target.smooth()
    th, tw = moving.pixels.shape[0] - 2 * radius, moving.pixels.shape[1] - 2 * radius
    rows, cols = a.shape[0] - th + 1, a.shape[1] - tw + 1
    size = (_transform_size(a.shape[0]), _transform_size(a.shape[1]))
    image_spectrum, _, _, image_mean = target.spectrum(0, size)
    template_spectrum, template_sum, template_squares, template_mean = moving.spectrum(radius, size)
    product = cv2.mulSpectrums(image_spectrum, template_spectrum, 0, conjB=True)
    deviations = cv2.idft(product, flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)[:rows, :cols]  # sum (a - ma)(t - mt)
    sums, squares = target.window_sums()
    window = sums[th : th + rows, tw : tw + cols] - sums[:rows, tw : tw + cols] - sums[th : th + rows, :cols] \
        + sums[:rows, :cols]
    window_squares = squares[th : th + rows, tw : tw + cols] - squares[:rows, tw : tw + cols] \
        - squares[th : th + rows, :cols] + squares[:rows, :cols]
    count = th * tw
    # sum a t = sum (a - ma)(t - mt) + mt sum a + ma sum t - n ma mt, over each window (in float64)
    cross = deviations + template_mean * window + image_mean * template_sum - count * image_mean * template_mean
    difference = (window - template_sum) / count
    msd = (window_squares - 2.0 * cross + template_squares) / count - difference * difference
    window_mean = window / count
    template_mean = template_sum / count
    return msd, window_squares / count - window_mean * window_mean, template_squares / count - template_mean ** 2


@lru_cache(maxsize=64)
def _transform_size(length: int) -> int:
    """The smallest 2^i 3^j at least ``length``: OpenCV's DFT is fastest there (128 takes two thirds of the time
    of 125, a quarter of 124's)."""
    best, three = 1 << max(length - 1, 0).bit_length(), 1
    while three < best:
        two = three
        while two < length:
            two *= 2
        best, three = min(best, two), three * 3
    return best


def _peaks(scores: np.ndarray) -> list[tuple[int, int]]:
    """The highest local maxima of a score map (at most PEAKS_EVALUATED)."""
    if scores.size <= 1:
        return [(0, 0)] if scores.size else []
    local = scores >= cv2.dilate(scores, np.ones((3, 3), np.uint8))
    candidates = np.flatnonzero(local)
    order = candidates[np.argsort(scores.ravel()[candidates])[::-1][:PEAKS_EVALUATED]]
    return [tuple(int(v) for v in np.unravel_index(int(flat), scores.shape)) for flat in order]  # type: ignore[misc]


_QUADRATIC = np.array([[1.0, x, y, x * x, x * y, y * y] for y in (-1, 0, 1) for x in (-1, 0, 1)])
_QUADRATIC_FIT = np.linalg.pinv(_QUADRATIC)


def _vertex(surface: np.ndarray, oy: int, ox: int) -> tuple[float, float]:
    """Sub-pixel minimum near the sample (oy, ox), as an offset from it: a quadratic in both axes (with its cross
    term, so that a diagonal valley is followed) fitted to the 3x3 samples around a point, moved to the sample
    nearest the fitted minimum and fitted again while that changes. Along a valley with no minimum (one-directional
    structure: every point of its floor fits equally well) the step goes straight to the floor."""
    if surface.shape[0] < 3 or surface.shape[1] < 3:
        return 0.0, 0.0
    cy, cx = min(max(oy, 1), surface.shape[0] - 2), min(max(ox, 1), surface.shape[1] - 2)  # at the edge: fit inside
    fy, fx = float(oy - cy), float(ox - cx)
    for _ in range(3):
        _, b, c, d, e, f = (_QUADRATIC_FIT @ surface[cy - 1 : cy + 2, cx - 1 : cx + 2].astype(np.float64).ravel()
                            ).tolist()
        step = _newton_step(2 * d, e, 2 * f, b, c)
        if step is None:
            break
        fx, fy = (min(max(v, -1.5), 1.5) for v in step)
        ny = min(max(cy + round(fy), 1), surface.shape[0] - 2)
        nx = min(max(cx + round(fx), 1), surface.shape[1] - 2)
        if (ny, nx) == (cy, cx):
            break
        cy, cx = ny, nx
        fy, fx = fy - round(fy), fx - round(fx)
    return cy - oy + fy, cx - ox + fx


def _newton_step(hxx: float, hxy: float, hyy: float, gx: float, gy: float) -> tuple[float, float] | None:
    """The step to the minimum of a quadratic with Hessian [[hxx, hxy], [hxy, hyy]] and gradient (gx, gy), along
    the directions where it curves upwards (more than 2 % of the steepest): along a flat valley it goes straight to
    the floor. None when it curves up nowhere. (A 2x2 eigen-decomposition in closed form.)"""
    mean, half = (hxx + hyy) / 2, math.hypot((hxx - hyy) / 2, hxy)
    high, low = mean + half, mean - half
    if high <= 1e-12:
        return None
    angle = 0.5 * math.atan2(2 * hxy, hxx - hyy)  # the steepest direction
    step_x = step_y = 0.0
    for value, (ux, uy) in ((high, (math.cos(angle), math.sin(angle))), (low, (-math.sin(angle), math.cos(angle)))):
        if value > 0.02 * high:
            along = -(ux * gx + uy * gy) / value
            step_x, step_y = step_x + along * ux, step_y + along * uy
    return step_x, step_y


def _snap(value: float) -> float:
    return float(round(value)) if abs(value - round(value)) < SNAP else value


def valid_rect(warp: Warp, target_shape: tuple[int, ...], moving_shape: tuple[int, ...]
               ) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Target rows and columns (half-open) whose translated points fall inside the moving image, with the margin
    the bicubic kernel needs (none for a whole-pixel translation)."""
    margin = 0.0 if warp.integral else 1.0
    spans = []
    for offset, size, moving in ((warp.ty, target_shape[0], moving_shape[0]), (warp.tx, target_shape[1], moving_shape[1])):
        low = max(0, math.ceil(margin - offset - 1e-9))
        high = min(size, math.floor(moving - 1 - margin - offset + 1e-9) + 1)
        if high - low < 1:
            return None
        spans.append((low, high))
    return spans[0], spans[1]


def resample(image: np.ndarray, warp: Warp, rect: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    """The moving image at the translated points of the target rectangle ``rect``: plain slicing at a whole-pixel
    translation, else bicubic interpolation (``cv2.warpAffine``'s INTER_CUBIC with replicated edges, within float32
    rounding: at most 9e-4 on levels up to 255 over 3,000 random cases; see ``_bicubic``)."""
    (y0, y1), (x0, x1) = rect
    if warp.integral:
        ty, tx = int(round(warp.ty)), int(round(warp.tx))
        return image[y0 + ty : y1 + ty, x0 + tx : x1 + tx]
    return _bicubic(image, float(np.float32(y0 + warp.ty)), float(np.float32(x0 + warp.tx)), y1 - y0, x1 - x0)


CUBIC_A = -0.75  # OpenCV's bicubic kernel parameter


def _cubic_taps(fraction: float) -> np.ndarray:
    """The four weights of OpenCV's bicubic kernel for the pixels at -1, 0, 1 and 2 from a point ``fraction`` past
    pixel 0 (OpenCV's interpolateCubic)."""
    a, x = CUBIC_A, fraction
    c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    c1 = ((a + 2) * x - (a + 3)) * x * x + 1
    c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    return np.array([c0, c1, c2, 1 - c0 - c1 - c2], np.float32)


def _bicubic(image: np.ndarray, y: float, x: float, height: int, width: int) -> np.ndarray:
    """``image`` sampled at (y + i, x + j) for i < height, j < width, by OpenCV's bicubic kernel, edges replicated:
    what ``cv2.warpAffine`` gives for a translation (OpenCV 5 takes the translation as it is, not in 1/32 pixels).
    Every point has the same fraction, so the 4x4 kernel is the product of two 4-tap ones and the interpolation is
    two 1-D passes (``cv2.sepFilter2D``): 28 us for a 124x124 proof image, where warpAffine took 94."""
    top, left = math.floor(y), math.floor(x)
    rows, cols = (top - 1, top + height + 2), (left - 1, left + width + 2)  # the taps reach 1 before, 2 after
    if rows[0] < 0 or cols[0] < 0 or rows[1] > image.shape[0] or cols[1] > image.shape[1]:
        pad = max(0, -rows[0], -cols[0], rows[1] - image.shape[0], cols[1] - image.shape[1])
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        rows, cols = (rows[0] + pad, rows[1] + pad), (cols[0] + pad, cols[1] + pad)
    window = image[rows[0] : rows[1], cols[0] : cols[1]]
    filtered = cv2.sepFilter2D(window, cv2.CV_32F, _cubic_taps(x - left), _cubic_taps(y - top), anchor=(0, 0),
                               borderType=cv2.BORDER_CONSTANT)
    return filtered[:height, :width]


def residual(a: np.ndarray, b: np.ndarray, warp: Warp) -> float:
    """RMS of the low-passed difference between target ``a`` and moving ``b`` translated by ``warp``, after a
    gain/offset fit, over their overlap; inf when the overlap is too small."""
    rect = valid_rect(warp, a.shape, b.shape)
    if rect is None:
        return float("inf")
    (y0, y1), (x0, x1) = rect
    if (y1 - y0) * (x1 - x0) < MIN_OVERLAP * min(a.size, b.size):
        return float("inf")
    return fitted_rms(np.ascontiguousarray(a[y0:y1, x0:x1]), np.ascontiguousarray(resample(b, warp, rect)),
                      filtered=True)


def unmoved_residual(a: Prepared, b: Prepared) -> float:
    """``residual`` of two images of one shape at no translation, from their low-passed images: the low-pass is
    linear and keeps a constant (its weights sum to 1, borders reflected), so the low-passed difference is the
    difference of the low-passed images, gain and offset applied (to float32 rounding: at most 7e-6 apart over 900
    real pairs). A registration needs both low-passed images anyway: where the images turn out to be moved, the
    check and both low-passes cost 100 us, where the check on a difference low-passed on its own, then both
    low-passes, cost 147."""
    gain, offset = _gain_offset(a.pixels, b.pixels)
    return _rms(cv2.addWeighted(b.smooth(), 1.0, a.smooth(), -gain, -offset))


def mean_std(image: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of a one-channel image, from its sum and sum of squares (in double): for a
    124x124 float32 image 12 us, where cv2.meanStdDev takes 33 (the same values to 1e-10)."""
    count = image.size
    mean = cv2.sumElems(image)[0] / count
    return mean, math.sqrt(max(cv2.norm(image, cv2.NORM_L2SQR) / count - mean * mean, 0.0))


def fitted_rms(a: np.ndarray, b: np.ndarray, *, filtered: bool = False) -> float:
    """RMS of b - (gain * a + offset), gain fitted by least squares and held within GAIN_RANGE; with
    ``filtered`` the difference is low-pass filtered first (float32 inputs of one shape)."""
    gain, offset = _gain_offset(a, b)
    difference = cv2.addWeighted(b, 1.0, a, -gain, -offset)
    return _rms(lowpass(difference) if filtered else difference)


def _gain_offset(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The least-squares fit b ~ gain * a + offset, the gain held within GAIN_RANGE (float32 images of one shape)."""
    a_mean, a_std = mean_std(a)
    b_mean = float(cv2.mean(b)[0])
    gain = _fitted_gain(float(cv2.mean(cv2.multiply(a, b))[0]) - a_mean * b_mean, a_std * a_std)
    return gain, b_mean - gain * a_mean


def _rms(difference: np.ndarray) -> float:
    return math.sqrt(max(float(cv2.mean(cv2.multiply(difference, difference))[0]), 0.0))


def _fitted_gain(covariance: float, variance: float) -> float:
    """The least-squares gain cov(a, b) / var(a), held within GAIN_RANGE; 1 where a is flat."""
    if variance <= 1e-6:
        return 1.0
    return min(max(covariance / variance, GAIN_RANGE[0]), GAIN_RANGE[1])
