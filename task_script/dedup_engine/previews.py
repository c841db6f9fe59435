"""A small JPEG of each image, made while it is decoded anyway, for reports (the engine itself never uses it).

The local runner's report shows every duplicate group as thumbnails; making them from the grey image the worker
already holds costs a resize and a small JPEG encode, where a report made afterwards decodes each file again.
"""

from __future__ import annotations

import cv2
import numpy as np

SIDE = 96  # the report shows thumbnails at 96x96 CSS pixels
QUALITY = 80


def preview_jpeg(grey: np.ndarray, side: int = SIDE) -> bytes:
    """The 8-bit grey image reduced to fit ``side`` x ``side`` (never enlarged), as JPEG bytes."""
    height, width = grey.shape
    scale = min(1.0, side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any 8-bit grey image
        raise ValueError("JPEG encoding failed")
    return encoded.tobytes()
