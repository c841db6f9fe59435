"""Everything the decision needs from one file, computed once, in a worker process.

A fingerprint holds checksums, perceptual hashes, a small low-passed *proof image* (see proof.py) and, for the
MSE method only, the full canonical pixels. Holding small proof images instead of decoded images keeps a
40,000-image run in memory.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Union

import cv2
import numpy as np
import xxhash

from .decoding import IMAGE_SUFFIXES, DecodedImage, decode, sniff_format
from .errors import ImageError
from .hashing import hash_hex, perceptual_hash
from .models import DedupParams
from .slotted import reduce_with_arrays
from .previews import preview_jpeg
from .proof import ProofImage, prepare
from .signatures import foreground, layout

ByteSource = Callable[[], bytes]
Source = Union[bytes, ByteSource]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    path: str
    sha256: str
    size_bytes: int
    format: str
    width: int
    height: int
    pixel_digest: str
    hash_hex: str
    hash_int: int
    proof: ProofImage | None  # hash method only (the MSE method proves on the full pixels)
    signature: np.ndarray | None  # hash method only: ranks its hash candidates (see signatures.py)
    centred_signature: np.ndarray | None
    centroid: tuple[float, float] | None  # of the proof image's foreground (y, x, proof pixels; see signatures.py)
    sensitivity: float  # how far the signature moves under a shift of max_shift_px (see signatures.layout)
    sharpness: float  # variance of the Laplacian of the grey image
    pixels: np.ndarray | None  # canonical pixels for the MSE method only: uint8, or float32 on the 8-bit scale
    preview: bytes | None = None  # a small JPEG for reports, when asked for (see previews.py)

    __reduce__ = reduce_with_arrays  # workers send every fingerprint to the deciding process (see slotted.py)


@dataclass(frozen=True, slots=True)
class Failure:
    """A file the engine could not fingerprint: an image it cannot read, or not an image at all."""

    path: str
    sha256: str | None
    size_bytes: int | None
    status: str  # "error" | "passthrough"
    message: str


def fingerprint(path: str, source: Source, params: DedupParams, *, preview: bool = False,
                pack: bool = False) -> Fingerprint | Failure:
    """Fingerprint one file (with a preview JPEG if ``preview``; with ``pack``, its proof image packed as a kept
    image holds it, see ``proof.prepare``). Never raises for a bad file: the failure is returned, naming the
    reason."""
    try:
        data = source if isinstance(source, (bytes, bytearray, memoryview)) else source()
    except OSError as exc:
        return Failure(path, None, None, "error", f"cannot read the file: {exc}")
    data = bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    if suffix not in IMAGE_SUFFIXES and sniff_format(data) is None:
        return Failure(path, sha256, len(data), "passthrough", f"not an image file ({suffix or 'no extension'}); kept as is")
    try:
        image = decode(data, path=path, max_pixels=params.max_pixels)
    except ImageError as exc:
        return Failure(path, sha256, len(data), "error", str(exc.args[0]))
    try:
        return _fingerprint_decoded(path, sha256, len(data), image, params, preview, pack)
    except Exception as exc:  # noqa: BLE001 - one file's surprise must not stop a 40,000-image run
        return Failure(path, sha256, len(data), "error",
                       f"decoded, but could not be fingerprinted ({type(exc).__name__}: {exc}); the file is left "
                       "where it is. Please report this with the file.")


def _fingerprint_decoded(path: str, sha256: str, size: int, image: DecodedImage, params: DedupParams,
                         preview: bool, pack: bool = False) -> Fingerprint:
    grey = image.grey
    main_hash = perceptual_hash(grey, params.hash_algorithm, params.hash_size)
    hex_value = hash_hex(main_hash)
    proof = prepare(grey, params.max_shift_px, pack=pack) if params.method == "hash" else None
    found = foreground(proof.pixels) if proof is not None else None
    signed = layout(proof.pixels, params.max_shift_px, proof.factor) if proof is not None else None
    pixels = _mse_pixels(image.pixels) if params.method == "mse" else None
    return Fingerprint(
        path=path,
        sha256=sha256,
        size_bytes=size,
        format=image.format,
        width=image.width,
        height=image.height,
        pixel_digest=_pixel_digest(image.pixels),
        hash_hex=hex_value,
        hash_int=int(hex_value, 16),
        proof=proof,
        signature=signed[0] if signed is not None else None,
        sensitivity=signed[1] if signed is not None else 0.0,
        centred_signature=found[0] if found is not None else None,
        centroid=found[1] if found is not None else None,
        sharpness=float(cv2.Laplacian(grey, cv2.CV_32F).var()) if params.keep == "sharpest" else 0.0,
        pixels=pixels,
        preview=preview_jpeg(grey) if preview else None,
    )


def _pixel_digest(pixels: np.ndarray) -> str:
    """A 128-bit digest of the decoded pixels, their type and shape (xxHash's XXH3: not cryptographic, but a chance
    collision among a run's images is about 1e-29, and it costs a twentieth of blake2b)."""
    digest = xxhash.xxh3_128(f"{pixels.dtype.str}{pixels.shape}".encode())
    digest.update(np.ascontiguousarray(pixels).data)
    return digest.hexdigest()


def _mse_pixels(pixels: np.ndarray) -> np.ndarray:
    """8-bit pixels as they are (a quarter of the memory of floats, and an exact integer MSE); 16-bit pixels
    scaled to the 8-bit scale as float32, so that one ``max_mse`` means the same for both."""
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 257.0
    return pixels
