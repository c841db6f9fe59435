"""The decision: which images are kept, and of which kept image each other image is a proven copy.

Images are visited in the order of the keep rule; each is compared only with the images kept before it. An image
is archived only when proven: identical bytes, identical pixels, or (hash method) a candidate (a near layout
signature, see signatures.py) whose pixel proof passes, or (MSE method) a kept image of the same shape within
``max_mse`` whose residual passes the same low-pass check. Otherwise it is kept. Pure: fingerprints in, decisions out.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import cv2
import numpy as np

from .fingerprints import Fingerprint
from .hashing import hamming
from .index import MultiIndexHash
from .models import DedupParams, Proof as ProofKind
from .mse import MseIndex
from .proof import MIN_CONTENT, PROOF_MAX_SIDE, Prepared, ProofImage, fitted_rms, lower_bounds, prove, reshaped_bound
from .previews import preview_jpeg
from .signatures import NearestSignatures, SignatureTable
from .slotted import replaced

PreviewSink = Callable[[str, bytes], None]  # (path, JPEG bytes)
UNPACKED_CACHE = 64  # kept proof images held ready to prove (float32 and low-passed: 128 KB each at 128x128)
RAW_KEPT_BYTES = 48 * 2**20  # kept proof images are held as they came up to this many bytes, then packed (packing
# and unpacking cost a third of a 5,000-image run's decisions; a 40,000-image run would hold 600 MB unpacked)
MAX_PROOFS_PER_IMAGE = 8  # mse: nearest kept images proven per image; a cap can only cost recall, never safety
HASH_PROOFS = 3  # hash: candidates proven per image, nearest signature first (at 40,000 images 99.6 % of the copies
# found pass at the first, and 10 of 10,189 after the third, while kept images ran up to 18 failing proofs each)
PROOF_BUDGET_PIXELS = HASH_PROOFS * 128 * 128  # small proof images cost less: more of them, up to 32
LATER_BOUND = 0.1  # beyond its first proof, an image's candidates are proven only with a lower bound (see proof.py)
# under this share of max_residual: a copy's bound is near 0 (at most 0.065 of 10,184 passing proofs at 40,000,
# 0.0 where the bound does not apply), a look-alike's is not (half of the failing proofs bound above 0.34). At
# 40,000: 23,897 -> 20,183 proofs, recall 99.62 -> 99.65 % (the slots go to closer candidates); realdup-dev loses
# none.
FIRST_BOUND = 0.5  # an image's first proof runs up to this share of max_residual: it gives a kept image its nearest
# candidate and measured residual, which is worth a proof for a near miss; a candidate bounded above half the
# threshold is no near miss (at 40,000, the 3,692 first proofs it skips all had residuals of 1.06 or more against
# a 0.75 threshold, and they cost 2.4 s of 36), and its bound is what the reason shows. Copies bound far below (at
# most 0.065 at 40,000, 0.26 on realdup-dev).
SIGNATURE_REACH = 1.5  # times the larger sensitivity (plus the slack): the farthest copy measured is at 1.04 times
SIGNATURE_SLACK = 0.01  # noise, JPEG and brightness move a signature by up to about this much
LAYOUT_NEIGHBOURS = 8  # nearest layout signatures (and as many centred ones) taken as candidates
HASH_NEIGHBOURS = 8  # with max_distance > 0: the nearest perceptual hashes within it are candidates too
SMALL_FRAME = 96  # frames up to this side take more neighbours: a crop moves their layout more, and proofs are cheap
SMALL_FRAME_NEIGHBOURS = 32


@dataclass(frozen=True, slots=True)
class Decision:
    path: str
    duplicate_of: str | None = None
    proof: ProofKind | None = None
    distance: float | None = None
    residual: float | None = None
    reason: str | None = None
    nearest: str | None = None  # a kept image: the nearest kept candidate its proof compared it with


_DIGITS = re.compile(r"(\d+)")


def natural_key(path: str) -> tuple[object, ...]:
    """Acquisition order: "img2" before "img10"; compares folder by folder."""
    return tuple([(0, int(part), part) if part.isdigit() else (1, 0, part.lower())
                  for part in _DIGITS.split(path) if part])


def keep_order(fingerprints: Sequence[Fingerprint], rule: str) -> list[Fingerprint]:
    if rule == "largest":
        return sorted(fingerprints, key=lambda f: (-(f.width * f.height), -f.size_bytes, natural_key(f.path)))
    if rule == "sharpest":
        return sorted(fingerprints, key=lambda f: (-f.sharpness, natural_key(f.path)))
    return sorted(fingerprints, key=lambda f: natural_key(f.path))


class Grouper:
    """Stateful over one run: feed images in keep order; ``prior`` images are kept without question."""

    def __init__(self, params: DedupParams, previews: PreviewSink | None = None) -> None:
        self.params = params
        # thumbnails of the images in a group, made from their proof images (the MSE method's workers make them)
        self._previews = previews if params.method == "hash" else None
        self._previewed: set[int] = set()
        self.kept: list[Fingerprint] = []
        self._by_sha: dict[str, int] = {}
        self._by_pixels: dict[str, int] = {}
        bits = params.hash_size * params.hash_size
        self._raw = MultiIndexHash(bits, params.max_distance)
        self._mse = MseIndex()
        self._signatures = SignatureTable()
        self._centred_signatures = SignatureTable()
        self._layouts = NearestSignatures()
        self._centred_layouts = NearestSignatures()
        self._raw_bytes = 0  # of kept proof images held unpacked (see RAW_KEPT_BYTES)
        self._unpacked_cache: dict[int, Prepared] = {}  # item -> proof image ready to prove, least recent first
        self.proofs_run = 0
        self.bound_rejections = 0  # candidates rejected by the proof's lower bound, without a proof
        self.signature_rejections = 0  # candidates whose layout signature is too far to be a copy
        self.search_s = 0.0  # time in the index (candidate search), and in pixel proofs: the bench reports both
        self.proof_s = 0.0

    def stats(self) -> dict[str, float]:
        """Seconds in candidate search and in proofs, proofs run, and candidates the lower bound rejected."""
        return {"search_s": self.search_s, "proof_s": self.proof_s, "proofs": float(self.proofs_run),
                "bound_rejections": float(self.bound_rejections),
                "signature_rejections": float(self.signature_rejections)}

    def keep(self, fp: Fingerprint) -> None:
        item = len(self.kept)
        proof = None
        if fp.proof is not None:
            raw = isinstance(fp.proof.data, np.ndarray) and self._raw_bytes + fp.proof.data.nbytes <= RAW_KEPT_BYTES
            self._raw_bytes += fp.proof.data.nbytes if raw else 0
            proof = fp.proof.as_kept(pack=not raw)
        self.kept.append(replaced(  # the signatures live in their tables; the proof image (packed)
            fp, proof=proof, signature=None, centred_signature=None))
        self._by_sha.setdefault(fp.sha256, item)
        self._by_pixels.setdefault(fp.pixel_digest, item)
        if self.params.method == "hash":
            if self.params.max_distance:
                self._raw.add(item, fp.hash_int)
            if fp.signature is not None:
                self._signatures.add(item, fp.signature, fp.sensitivity)
                self._layouts.add(item, fp.signature)
            # every kept image has a row, zeros without a centred signature (a frame with no foreground): the
            # ranking reads the rows of all its candidates (a blank frame kept as item 64, the table's size then,
            # made the next image's ranking fail)
            self._centred_signatures.add(item, fp.centred_signature)
            if fp.centred_signature is not None:
                self._centred_layouts.add(item, fp.centred_signature)
        elif fp.pixels is not None:
            self._mse.add(item, fp.pixels)

    def decide(self, fp: Fingerprint) -> Decision:
        """Archive ``fp`` as a proven copy of a kept image, or keep it."""
        item = self._by_sha.get(fp.sha256)
        if item is not None:
            self._preview(fp, item)
            return Decision(fp.path, self.kept[item].path, "identical_bytes", 0.0, 0.0, "identical bytes (sha256)")
        item = self._by_pixels.get(fp.pixel_digest)
        if item is not None:
            self._preview(fp, item)
            return Decision(fp.path, self.kept[item].path, "identical_pixels", 0.0, 0.0, "identical decoded pixels")
        found = self._near_hash(fp) if self.params.method == "hash" else self._near_mse(fp)
        if found is None or found.duplicate_of is None:
            self.keep(fp)
            return found or Decision(fp.path)
        return found

    def _near_hash(self, fp: Fingerprint) -> Decision:
        """The first candidate, in the order of their signatures' distance, whose proof passes; otherwise a kept
        decision whose reason names the nearest candidate and its residual (or the bound that ruled it out)."""
        assert fp.proof is not None and fp.signature is not None, "hash method fingerprints carry a proof image"
        radius, threshold, shift = self.params.max_distance, self.params.max_residual, self.params.max_shift_px
        started = time.perf_counter()
        # candidates: the nearest layouts (whatever the run's size, the original of a copy is among the first few,
        # where on look-alike frames hundreds of kept hashes lie within the radius), and the nearest hashes
        neighbours = SMALL_FRAME_NEIGHBOURS if max(fp.width, fp.height) <= SMALL_FRAME else LAYOUT_NEIGHBOURS
        hits = dict.fromkeys(self._layouts.nearest(fp.signature, neighbours), "layout signature")  # item -> found by
        if fp.centred_signature is not None:
            for item in self._centred_layouts.nearest(fp.centred_signature, neighbours):
                hits.setdefault(item, "centred layout signature")
        for item, _ in self._raw.nearest(fp.hash_int, radius, HASH_NEIGHBOURS) if radius else ():
            hits.setdefault(item, "hash")
        if not hits:
            self.search_s += time.perf_counter() - started
            return Decision(fp.path, reason="kept: the first image of its kind")
        allowed = min(SMALL_FRAME_NEIGHBOURS, max(HASH_PROOFS, PROOF_BUDGET_PIXELS // fp.proof.data.size))
        items = np.fromiter(hits, np.int64, len(hits))
        closeness = self._signatures.distances(items, fp.signature)
        if fp.centred_signature is not None:  # a kept image without one has zeros there: at least distance 1
            closeness = np.minimum(closeness, self._centred_signatures.distances(items, fp.centred_signature))
        # a copy's signature stays within about the larger sensitivity: look-alikes far beyond it are not looked at
        reach = SIGNATURE_REACH * (np.maximum(self._signatures.sensitivity[items], fp.sensitivity) + SIGNATURE_SLACK)
        within = closeness <= reach
        self.signature_rejections += int((~within).sum())
        if not within.any():
            nearest_item = int(items[int(np.argmin(closeness))])
            self.search_s += time.perf_counter() - started
            return Decision(fp.path, reason=f"kept: nearest kept {self.kept[nearest_item].path}: layout signature "
                                            f"{float(closeness.min()):.3f} apart, beyond what a copy moves "
                                            f"({len(hits)} candidates)")
        items, closeness = items[within], closeness[within]
        ranked = items[np.lexsort((items, closeness))][: 2 * allowed].tolist()
        searched = time.perf_counter()
        self.search_s += searched - started
        bounds = lower_bounds([self._proof(item) for item in ranked], fp.proof, max_shift_px=shift)
        candidate: Prepared | None = None
        nearest: tuple[float, int, bool, bool] | None = None  # (residual, estimate or bound; item; proven; refined)
        proofs = 0
        try:
            for item, bound in zip(ranked, bounds):
                limit = (FIRST_BOUND if proofs == 0 else LATER_BOUND) * threshold
                kept_proof = self._proof(item)
                if kept_proof.shape != fp.proof.shape:  # another frame size: bounded here, when it comes to it
                    if proofs == allowed:
                        break
                    candidate = candidate or fp.proof.prepared()
                    limit = FIRST_BOUND * threshold  # such copies bound higher (up to 0.17): every proof gets the
                    # first one's room
                    bound = reshaped_bound(kept_proof, fp.proof, candidate.smooth(), max_shift_px=shift)
                if bound > limit:
                    self.bound_rejections += 1
                    if nearest is None or (not nearest[2] and bound < nearest[0]):
                        nearest = (float(bound), item, False, False)
                    continue
                if proofs == allowed:
                    break
                proofs += 1
                self.proofs_run += 1
                candidate = candidate or fp.proof.prepared()
                kept = self._unpacked(item)
                centroids = self.kept[item].centroid, fp.centroid
                proof = prove(kept, candidate, max_residual=threshold, max_shift_px=shift,
                              centroids=None if None in centroids else centroids)
                if proof.passed:
                    distance = hamming(fp.hash_int, self.kept[item].hash_int)
                    found_by = f", a candidate by its {hits[item]}"
                    reason = f"hash distance {distance}{found_by}; {proof.reason}"
                    self._preview(fp, item, kept.pixels)
                    return Decision(fp.path, self.kept[item].path, "near_duplicate", float(distance),
                                    proof.residual, reason)
                if nearest is None or not nearest[2] or proof.residual < nearest[0]:
                    nearest = (proof.residual, item, True, proof.refined)
        finally:
            self.proof_s += time.perf_counter() - searched
        assert nearest is not None
        value, item, proven, refined = nearest
        kind = "residual" if refined else "residual about (whole-pixel estimate)" if proven else \
            "residual at least (bound)"
        shown = "beyond registration" if not np.isfinite(value) else f"{value:.2f}"
        if not proven and value <= threshold:  # bounded above FIRST_BOUND of the threshold, below the threshold
            reason = (f"kept: nearest kept {self.kept[item].path}: residual at least (bound) {value:.3f}, above the "
                      f"{FIRST_BOUND * threshold:.3f} a copy's bound stays within: not proven ({len(hits)} candidates)")
        else:
            reason = (f"kept: nearest kept {self.kept[item].path}: {kind} {shown} > {threshold:g} "
                      f"({len(hits)} candidates)")
        if not proven or not np.isfinite(value):
            return Decision(fp.path, reason=reason)
        return Decision(fp.path, residual=value, reason=reason, nearest=self.kept[item].path)

    def _preview(self, fp: Fingerprint, item: int, kept_pixels: np.ndarray | None = None) -> None:
        """Thumbnails of an archived image and, the first time, of its kept image: only a group's images are shown,
        so only they are made (from the proof images, a whole-factor reduction of at most 128 pixels a side; the
        kept one from ``kept_pixels`` if given, its proof image as the proof unpacked it, float32 of 8-bit values)."""
        if self._previews is None or fp.proof is None:
            return
        # a proof image is at most PROOF_MAX_SIDE a side: encoded as it is (31 us), where its area reduction to the
        # report's 96 CSS pixels cost 50 us more than the encoding (the browser scales it, sharper on HiDPI screens)
        self._previews(fp.path, preview_jpeg(fp.proof.pixels, side=PROOF_MAX_SIDE))
        kept = self.kept[item]
        if item not in self._previewed and kept.proof is not None:
            self._previewed.add(item)
            pixels = kept.proof.pixels if kept_pixels is None else kept_pixels.astype(np.uint8)  # exact: whole levels
            self._previews(kept.path, preview_jpeg(pixels, side=PROOF_MAX_SIDE))

    def _unpacked(self, item: int) -> Prepared:
        """A kept image's proof image ready for ``prove``; the most recently proven ones are held unpacked (a few
        kept images are the look-alikes of many candidates)."""
        unpacked = self._unpacked_cache.pop(item, None) or self._proof(item).prepared()
        self._unpacked_cache[item] = unpacked  # most recent last
        if len(self._unpacked_cache) > UNPACKED_CACHE:
            del self._unpacked_cache[next(iter(self._unpacked_cache))]
        return unpacked

    def _proof(self, item: int) -> ProofImage:
        proof = self.kept[item].proof
        assert proof is not None, "hash method fingerprints carry a proof image"
        return proof

    def _near_mse(self, fp: Fingerprint) -> Decision | None:
        if fp.pixels is None:
            return None
        started = time.perf_counter()
        try:
            for item, value in self._mse.nearest(fp.pixels, self.params.max_mse, MAX_PROOFS_PER_IMAGE):
                checked = time.perf_counter()
                residual = structural_residual(self.kept[item].pixels, fp.pixels)
                self.proof_s += time.perf_counter() - checked
                started += time.perf_counter() - checked  # the search's clock stops during the proof
                if residual <= self.params.max_residual:
                    reason = (
                        f"MSE {value:.2f} <= {self.params.max_mse:g}; low-passed residual {residual:.2f} "
                        f"<= {self.params.max_residual:g}"
                    )
                    return Decision(fp.path, self.kept[item].path, "near_duplicate", value, residual, reason)
            return None
        finally:
            self.search_s += time.perf_counter() - started


def structural_residual(a: np.ndarray | None, b: np.ndarray) -> float:
    """The proof's low-pass residual without registration, for two images of one shape (MSE method)."""
    if a is None:
        return float("inf")
    grey_a = (a.mean(axis=2) if a.ndim == 3 else a).astype(np.float32)
    grey_b = (b.mean(axis=2) if b.ndim == 3 else b).astype(np.float32)
    if float(cv2.meanStdDev(grey_a)[1][0, 0]) < MIN_CONTENT:
        return float("inf")
    return fitted_rms(grey_a, grey_b, filtered=True)
