"""The method of our origin notes, as a baseline: every image compared with every kept one, in path order.

    phash: imagehash.phash (64 bits), duplicate when the Hamming distance to a kept image is below 5
    mse:   cv2.imread, duplicate when the float MSE to a kept image of the same shape is below 50
Prints {path: duplicate_of} as JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image


def main() -> int:
    method, folder = sys.argv[1], Path(sys.argv[2])
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    kept: list[tuple[str, object]] = []
    decisions: dict[str, str | None] = {}
    for path in files:
        rel = path.relative_to(folder).as_posix()
        if method == "phash":
            with Image.open(path) as image:
                value = imagehash.phash(image)
            match = next((k for k, h in kept if value - h < 5), None)
        else:
            value = cv2.imread(str(path)).astype(np.float64)
            match = next((k for k, a in kept if a.shape == value.shape and float(np.mean((a - value) ** 2)) < 50), None)
        decisions[rel] = match
        if match is None:
            kept.append((rel, value))
    print(json.dumps(decisions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
