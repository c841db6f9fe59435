"""A synthetic Attune CytPix-like run: brightfield single-cell images, some of them near-duplicates, and the truth.

    python -m local_runner.generator OUT --total-images 1000 --similar-images 300 [--seed 0] [--size 248x248]
                                     [--format bmp|png|mixed] [--run run-0001]

Each distinct image is a different cell (its own shape, size, texture, nucleus, position and debris) on an uneven
grey background with camera noise; PNGs are RGBA with R=G=B as the CytPix exports them, BMPs 8-bit grey or 24-bit.
Near-duplicates are made from a distinct image by one realistic change: an exact copy, a PNG/BMP re-encode, a
+-3 % gain, Gaussian noise (sigma 2), JPEG recompression saved as PNG, a 1-3 px shift (edges replicated), a
1-3 px crop, or a 95 % resize. Files are numbered in a shuffled order; the truth goes beside the run folder, in
OUT/<run>.truth.json, so it is never taken for input.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

tqdm.monitor_interval = 0  # no monitor thread: our bars are updated from one place and closed explicitly

TRANSFORMS = ("exact_copy", "reencode_format", "brightness", "gaussian_noise", "jpeg_recompress", "shift", "crop",
              "resize_95pct")
SCHEMA = "image-dedup-generator-truth/1"


@dataclass(frozen=True)
class GeneratedRun:
    run_dir: Path
    truth_path: Path
    total: int
    originals: int
    duplicates: int


def draw_cell(rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One brightfield frame (uint8 grey): background, a cell with membrane, cytoplasm and nucleus, some debris."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    level = rng.uniform(140, 175)
    tilt = rng.normal(0, 6, 2)
    background = level + tilt[0] * (xx / w - 0.5) + tilt[1] * (yy / h - 0.5)
    background -= rng.uniform(4, 12) * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2)  # vignetting
    scale = min(w, h) / 248.0
    cy, cx = h / 2 + rng.normal(0, 14 * scale), w / 2 + rng.normal(0, 14 * scale)
    radius = rng.uniform(16, 42) * scale
    aspect, angle = rng.uniform(0.75, 1.0), rng.uniform(0, np.pi)
    cos, sin = np.cos(angle), np.sin(angle)
    u = ((xx - cx) * cos + (yy - cy) * sin) / radius
    v = (-(xx - cx) * sin + (yy - cy) * cos) / (radius * aspect)
    theta = np.arctan2(v, u)
    wobble = 1 + 0.06 * np.sin(3 * theta + rng.uniform(0, 6)) + 0.04 * np.sin(5 * theta + rng.uniform(0, 6))
    r = np.sqrt(u * u + v * v) / wobble
    texture = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), rng.uniform(1.5, 3.5) * scale)
    texture /= texture.std() + 1e-6
    inside = np.clip((1 - r) * 8, 0, 1)
    image = background + inside * (rng.uniform(-25, 5) + rng.uniform(4, 12) * texture)
    ring = np.exp(-((r - 1) ** 2) / (2 * (0.06 ** 2)))
    halo = np.exp(-((r - 1.12) ** 2) / (2 * (0.07 ** 2)))
    image += -rng.uniform(35, 70) * ring + rng.uniform(10, 30) * halo
    ny, nx = cy + rng.normal(0, 0.25) * radius, cx + rng.normal(0, 0.25) * radius
    nr = radius * rng.uniform(0.3, 0.5)
    nucleus = np.exp(-(((xx - nx) ** 2 + ((yy - ny) / rng.uniform(0.7, 1.0)) ** 2) / (2 * nr * nr)) ** 2)
    image -= rng.uniform(10, 30) * nucleus * inside
    for _ in range(rng.poisson(1.2)):  # debris and small particles
        dy, dx = rng.uniform(0, h), rng.uniform(0, w)
        dr = rng.uniform(1.5, 5) * scale
        image -= rng.uniform(15, 50) * np.exp(-((xx - dx) ** 2 + (yy - dy) ** 2) / (2 * dr * dr))
    image += rng.normal(0, rng.uniform(1.5, 3.0), (h, w))  # camera noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def encode(grey: np.ndarray, fmt: str, rng: np.random.Generator) -> bytes:
    buffer = io.BytesIO()
    if fmt == "png":
        Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)])).save(buffer, "PNG")
    else:
        image = Image.fromarray(grey)
        (image if rng.random() < 0.5 else image.convert("RGB")).save(buffer, "BMP")
    return buffer.getvalue()


def transform(grey: np.ndarray, name: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    h, w = grey.shape
    if name == "brightness":
        gain = float(rng.choice([0.97, 1.03]))
        return np.clip(np.rint(grey * gain), 0, 255).astype(np.uint8), {"gain": gain}
    if name == "gaussian_noise":
        return np.clip(np.rint(grey + rng.normal(0, 2, grey.shape)), 0, 255).astype(np.uint8), {"sigma": 2}
    if name == "jpeg_recompress":
        quality = int(rng.choice([75, 85, 95]))
        buffer = io.BytesIO()
        Image.fromarray(grey).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L")), {"quality": quality}
    if name == "shift":
        dy, dx = 0, 0
        while dy == 0 and dx == 0:
            dy, dx = (int(x) for x in rng.integers(-3, 4, 2))
        matrix = np.float32([[1, 0, dx], [0, 1, dy]])
        return cv2.warpAffine(grey, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE), {"dy": dy, "dx": dx}
    if name == "crop":
        top, bottom, left, right = (int(x) for x in rng.integers(0, 4, 4))
        if top + bottom + left + right == 0:
            left = 1
        return np.ascontiguousarray(grey[top : h - bottom, left : w - right]), {"top": top, "bottom": bottom,
                                                                                "left": left, "right": right}
    if name == "resize_95pct":
        size = (round(w * 0.95), round(h * 0.95))
        return np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS)), {"size": list(size)}
    return grey, {}


def generate(out: Path, total_images: int, similar_images: int, *, seed: int = 0, size: tuple[int, int] = (248, 248),
             fmt: str = "mixed", run: str = "run-0001", progress: bool | None = None) -> GeneratedRun:
    if total_images < 1 or not 0 <= similar_images < total_images:
        raise ValueError("need total_images >= 1 and 0 <= similar_images < total_images")
    if fmt not in ("bmp", "png", "mixed"):
        raise ValueError("format must be bmp, png or mixed")
    rng = np.random.default_rng(seed)
    run_dir = out / run
    run_dir.mkdir(parents=True, exist_ok=False)
    originals = total_images - similar_images
    numbers = rng.permutation(total_images) + 1
    width = max(5, len(str(total_images)))
    formats = [fmt if fmt != "mixed" else ("png" if rng.random() < 0.5 else "bmp") for _ in range(total_images)]
    names = [f"{run.replace('/', '_')}_{n:0{width}d}.{formats[i]}" for i, n in enumerate(numbers)]
    truth: dict[str, dict] = {}
    pixels: list[np.ndarray] = []
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total_images, desc=f"generating {run}", unit="img", disable=not show or total_images < 200)
    for i in range(originals):
        grey = draw_cell(rng, size)
        pixels.append(grey)
        data = encode(grey, formats[i], rng)
        (run_dir / names[i]).write_bytes(data)
        truth[names[i]] = {"group": f"g{i:06d}", "role": "original", "transform": "original", "derived_from": None}
        bar.update()
    for i in range(originals, total_images):
        source = int(rng.integers(0, originals))
        kind = TRANSFORMS[int(rng.integers(0, len(TRANSFORMS)))]
        if kind == "exact_copy":
            data = (run_dir / names[source]).read_bytes()
            names[i] = names[i].rsplit(".", 1)[0] + "." + names[source].rsplit(".", 1)[1]
            params: dict = {}
        elif kind == "reencode_format":
            other = "bmp" if names[source].endswith(".png") else "png"
            names[i] = names[i].rsplit(".", 1)[0] + "." + other
            data, params = encode(pixels[source], other, rng), {"to": other}
        else:
            grey, params = transform(pixels[source], kind, rng)
            data = encode(grey, formats[i], rng)
        (run_dir / names[i]).write_bytes(data)
        truth[names[i]] = {"group": f"g{source:06d}", "role": "duplicate", "transform": kind, "params": params,
                           "derived_from": names[source]}
        bar.update()
    bar.close()
    truth_path = out / f"{run.replace('/', '_')}.truth.json"
    truth_path.write_text(json.dumps({"schema": SCHEMA, "run": run, "seed": seed, "size": list(size),
                                      "files": dict(sorted(truth.items()))}, indent=1))
    return GeneratedRun(run_dir, truth_path, total_images, originals, similar_images)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runner.generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--total-images", type=int, required=True)
    parser.add_argument("--similar-images", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", default="248x248", help="WIDTHxHEIGHT (248x248)")
    parser.add_argument("--format", default="mixed", choices=["bmp", "png", "mixed"])
    parser.add_argument("--run", default="run-0001")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        width, height = (int(x) for x in args.size.lower().split("x"))
        made = generate(args.out, args.total_images, args.similar_images, seed=args.seed, size=(width, height),
                        fmt=args.format, run=args.run)
    except (ValueError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{made.total} images ({made.originals} distinct, {made.duplicates} near-duplicates) in {made.run_dir}; "
          f"truth in {made.truth_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
