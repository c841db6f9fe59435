"""A synthetic Attune CytPix-like run: brightfield cell images, some of them near-duplicates, and the truth.

    python -m local_runner.generator OUT --total-images 1000 --similar-images 300 [--seed 0] [--size 248x248]
                                     [--format bmp|png|mixed] [--cells 1|1-4] [--transforms all|NAME,...]
                                     [--workers N] [--run run-0001]

Each distinct image is a frame of its own: one cell (as CytPix exports them) or, with ``--cells 1-4``, a random
number of cells per frame, each with its own shape, size, texture, nucleus and position, on an uneven grey
background with debris and camera noise. PNGs are RGBA with R=G=B as the CytPix exports them, BMPs 8-bit grey or
24-bit.

Near-duplicates are made from a distinct image by what real copies go through (``TRANSFORMS``):

    exact_copy        the same bytes
    reencode          the same pixels written again: to the other format (truth: ``reencode_format``) when the
                      run mixes formats, else within the format (PNG compression level or grey/RGBA mode, BMP 8 vs
                      24 bits; truth: ``reencode``)
    brightness        a gain of 0.97 or 1.03
    gaussian_noise    Gaussian noise of sigma 2
    jpeg_recompress   JPEG at quality 75, 85 or 95, saved back losslessly
    shift             a whole-pixel shift of up to 4 px on each axis (odd ones too), edges replicated
    subpixel_shift    a shift by fractional pixels (e.g. 0.5, 1.5, 2.7) of up to 4 px on each axis: cubic or
                      Lanczos-4 resampling of the original, edges replicated
    crop              0-4 px off each side (at least 1 px in all)
    resize            down or up by 2-10 %, with Pillow's Lanczos, OpenCV's INTER_AREA or INTER_CUBIC
    resize+jpeg_recompress+brightness, subpixel_shift+jpeg_recompress, crop+gaussian_noise
                      the steps one after the other

The truth says exactly what was done: ``files: {name: {group, role, transform, params, derived_from, cells}}``,
``params`` with the values used (fractional shifts, the scale and the size a resize produced, a combination's
``steps``). Shifts move the content by (dx, dy): right and down when positive. Files are numbered in a shuffled
order; the truth goes beside the run folder, in OUT/<run>.truth.json, so it is never taken for input.

Each image draws from its own random generator, derived from the seed and the image's index, so a seed gives the
same bytes whatever the number of worker processes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from .usage import UsageParser, positive_int

tqdm.monitor_interval = 0  # no monitor thread: our bars are updated from one place and closed explicitly

SINGLE = ("exact_copy", "reencode", "brightness", "gaussian_noise", "jpeg_recompress", "shift", "subpixel_shift",
          "crop", "resize")
COMBINED = ("resize+jpeg_recompress+brightness", "subpixel_shift+jpeg_recompress", "crop+gaussian_noise")
TRANSFORMS = SINGLE + COMBINED
SCHEMA = "image-dedup-generator-truth/1"
FORMATS = ("bmp", "png", "mixed")
MAX_SHIFT = 4
MAX_CELLS = 12
CHUNK = 48  # images per task handed to a worker (whole groups: an original and its copies)
INLINE_BELOW = 200  # smaller runs are made in this process: starting workers would cost more than it saves


@dataclass(frozen=True)
class GeneratedRun:
    run_dir: Path
    truth_path: Path
    total: int
    originals: int
    duplicates: int


@dataclass(frozen=True)
class Planned:
    """One file to make: its index (originals first), name, format, and for a copy its original and transform."""

    index: int
    name: str
    fmt: str
    source: int | None = None
    kind: str = "original"


@dataclass(frozen=True)
class Settings:
    size: tuple[int, int]
    cells: tuple[int, int]
    seed: int
    mixed: bool


# --- drawing -----------------------------------------------------------------------------------------------------

def draw_frame(rng: np.random.Generator, size: tuple[int, int], cells: int = 1) -> np.ndarray:
    """A brightfield frame (uint8 grey): background with tilt and vignetting, ``cells`` cells (membrane, cytoplasm,
    nucleus, halo), some debris, camera noise. Each cell and particle is drawn on its own window of the frame."""
    w, h = size
    scale = min(w, h) / 248.0
    xs = np.arange(w, dtype=np.float32)[None, :] / w - np.float32(0.5)
    ys = np.arange(h, dtype=np.float32)[:, None] / h - np.float32(0.5)
    level, tilt_x, tilt_y = float(rng.uniform(140, 175)), float(rng.normal(0, 6)), float(rng.normal(0, 6))
    vignetting = float(rng.uniform(4, 12))
    image = (level + tilt_x * xs - vignetting * xs * xs) + (tilt_y * ys - vignetting * ys * ys)
    for cy, cx, radius in _cell_places(rng, w, h, scale, cells):
        _add_cell(image, rng, cy, cx, radius, scale)
    for _ in range(int(rng.poisson(1.2 * cells))):  # debris and small particles
        dy, dx = float(rng.uniform(0, h)), float(rng.uniform(0, w))
        dr, depth = float(rng.uniform(1.5, 5) * scale), float(rng.uniform(15, 50))
        window, yy, xx = _window(image, dy, dx, 4 * dr)
        if window is not None:
            window -= depth * np.exp(-(xx * xx + yy * yy) / (2 * dr * dr))
    image += rng.standard_normal((h, w), dtype=np.float32) * np.float32(rng.uniform(1.5, 3.0))  # camera noise
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _cell_places(rng: np.random.Generator, w: int, h: int, scale: float,
                 cells: int) -> list[tuple[float, float, float]]:
    if cells == 1:
        return [(h / 2 + float(rng.normal(0, 14 * scale)), w / 2 + float(rng.normal(0, 14 * scale)),
                 float(rng.uniform(16, 42) * scale))]
    places: list[tuple[float, float, float]] = []
    for _ in range(cells):
        radius = float(rng.uniform(12, 30) * scale)
        margin = min(radius, w / 4, h / 4)
        for _attempt in range(20):  # keep cells apart where the frame has room
            cy, cx = float(rng.uniform(margin, h - margin)), float(rng.uniform(margin, w - margin))
            if all(math.hypot(cy - y, cx - x) > 1.2 * (radius + r) for y, x, r in places):
                break
        places.append((cy, cx, radius))
    return places


def _window(image: np.ndarray, cy: float, cx: float,
            reach: float) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The part of ``image`` within ``reach`` of (cy, cx) (a view), and its coordinates relative to that centre."""
    h, w = image.shape
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 2)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 2)
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - np.float32(cx)
    if y0 >= y1 or x0 >= x1:
        return None, yy, xx
    return image[y0:y1, x0:x1], yy, xx


def _add_cell(image: np.ndarray, rng: np.random.Generator, cy: float, cx: float, radius: float,
              scale: float) -> None:
    aspect, angle = float(rng.uniform(0.75, 1.0)), float(rng.uniform(0, np.pi))
    phases = rng.uniform(0, 6, 2)
    blur = float(rng.uniform(1.5, 3.5) * scale)
    body, grain = float(rng.uniform(-25, 5)), float(rng.uniform(4, 12))
    membrane, glow = float(rng.uniform(35, 70)), float(rng.uniform(10, 30))
    nucleus_at = rng.normal(0, 0.25, 2) * radius
    nr, squash, dark = float(radius * rng.uniform(0.3, 0.5)), float(rng.uniform(0.7, 1.0)), float(rng.uniform(10, 30))
    window, yy, xx = _window(image, cy, cx, 1.7 * radius)
    if window is None:
        return
    cos, sin = math.cos(angle), math.sin(angle)
    u = (xx * cos + yy * sin) / radius
    v = (-xx * sin + yy * cos) / (radius * aspect)
    theta = np.arctan2(v, u)
    wobble = 1 + 0.06 * np.sin(3 * theta + phases[0]) + 0.04 * np.sin(5 * theta + phases[1])
    r = np.sqrt(u * u + v * v) / wobble
    texture = cv2.GaussianBlur(rng.standard_normal(window.shape, dtype=np.float32), (0, 0), blur)
    texture /= texture.std() + 1e-6
    inside = np.clip((1 - r) * 8, 0, 1)
    ring = np.exp(-((r - 1) ** 2) / (2 * 0.06**2))
    halo = np.exp(-((r - 1.12) ** 2) / (2 * 0.07**2))
    ny, nx = yy - float(nucleus_at[0]), xx - float(nucleus_at[1])
    nucleus = np.exp(-((nx * nx + (ny / squash) ** 2) / (2 * nr * nr)) ** 2)
    window += (inside * (body + grain * texture) - membrane * ring + glow * halo - dark * nucleus * inside).astype(
        np.float32)


# --- encoding ----------------------------------------------------------------------------------------------------

def encode(grey: np.ndarray, fmt: str, *, bmp_bits: int = 8, png_level: int = 1, png_mode: str = "RGBA") -> bytes:
    """PNG: RGBA with R=G=B (or grey, ``png_mode="L"``) at zlib ``png_level`` (1: fast, and decodes as fast as any);
    BMP: 8-bit grey or 24-bit."""
    buffer = io.BytesIO()
    if fmt == "png":
        image = Image.fromarray(grey)
        if png_mode == "RGBA":
            image = Image.fromarray(np.dstack([grey, grey, grey, np.full_like(grey, 255)]))
        image.save(buffer, "PNG", compress_level=png_level)
    else:
        image = Image.fromarray(grey)
        (image if bmp_bits == 8 else image.convert("RGB")).save(buffer, "BMP")
    return buffer.getvalue()


def _reencode(grey: np.ndarray, fmt: str, original_bits: int, rng: np.random.Generator) -> tuple[bytes, dict]:
    """The same pixels written again within ``fmt``, in a way that differs from how the original was written."""
    if fmt == "png":
        level, mode = int(rng.choice([0, 6, 9])), str(rng.choice(["RGBA", "L"]))
        return encode(grey, "png", png_level=level, png_mode=mode), {"format": "png", "compress_level": level,
                                                                     "mode": mode}
    bits = 24 if original_bits == 8 else 8
    return encode(grey, "bmp", bmp_bits=bits), {"format": "bmp", "bits": bits}


# --- transforms --------------------------------------------------------------------------------------------------

def transform(grey: np.ndarray, name: str, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Apply the pixel transform ``name`` (one of ``TRANSFORMS`` but exact_copy and reencode, which are about
    bytes); the parameters returned say exactly what was done."""
    if "+" in name:
        steps = []
        for step in name.split("+"):
            grey, params = transform(grey, step, rng)
            steps.append({"transform": step, "params": params})
        return grey, {"steps": steps}
    h, w = grey.shape
    if name == "brightness":
        gain = float(rng.choice([0.97, 1.03]))
        return _to_uint8(grey * np.float32(gain)), {"gain": gain}
    if name == "gaussian_noise":
        return _to_uint8(grey + rng.normal(0, 2, grey.shape)), {"sigma": 2}
    if name == "jpeg_recompress":
        quality = int(rng.choice([75, 85, 95]))
        buffer = io.BytesIO()
        Image.fromarray(grey).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("L")), {"quality": quality}
    if name == "shift":
        dy, dx = 0, 0
        while dy == 0 and dx == 0:
            dy, dx = (int(x) for x in rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, 2))
        return shift(grey, dy, dx, "nearest"), {"dy": dy, "dx": dx}
    if name == "subpixel_shift":
        dy, dx = (round(float(x), 1) for x in rng.uniform(-MAX_SHIFT, MAX_SHIFT, 2))
        if dy.is_integer() and dx.is_integer():  # at least one fractional axis
            dx = dx - 0.5 if dx > 0 else dx + 0.5
        interpolation = str(rng.choice(["cubic", "lanczos4"]))
        return shift(grey, dy, dx, interpolation), {"dy": dy, "dx": dx, "interpolation": interpolation}
    if name == "crop":
        top, bottom, left, right = (int(x) for x in rng.integers(0, MAX_SHIFT + 1, 4))
        if top + bottom + left + right == 0:
            left = 1
        return np.ascontiguousarray(grey[top : h - bottom, left : w - right]), {"top": top, "bottom": bottom,
                                                                                "left": left, "right": right}
    if name == "resize":
        change = round(float(rng.uniform(0.02, 0.10)), 3)
        factor = round(1 + change if rng.random() < 0.5 else 1 - change, 3)
        method = str(rng.choice(["pillow_lanczos", "cv2_area", "cv2_cubic"]))
        return resize(grey, factor, method)
    raise ValueError(f"unknown transform {name!r}; choose from {', '.join(TRANSFORMS)}")


INTERPOLATION = {"nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}


def shift(grey: np.ndarray, dy: float, dx: float, interpolation: str = "cubic") -> np.ndarray:
    """The frame's content moved right by ``dx`` and down by ``dy`` pixels (fractions resampled, edges
    replicated). Resampling is done in float so that fractions are exact, not OpenCV's 1/32 px fixed point."""
    h, w = grey.shape
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    moved = cv2.warpAffine(grey.astype(np.float32), matrix, (w, h), flags=INTERPOLATION[interpolation],
                           borderMode=cv2.BORDER_REPLICATE)
    return _to_uint8(moved)


def resize(grey: np.ndarray, factor: float, method: str) -> tuple[np.ndarray, dict]:
    """The frame scaled by ``factor`` (sizes rounded to whole pixels) with ``method``."""
    h, w = grey.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if method == "pillow_lanczos":
        scaled = np.asarray(Image.fromarray(grey).resize(size, Image.Resampling.LANCZOS))
    else:
        flag = cv2.INTER_AREA if method == "cv2_area" else cv2.INTER_CUBIC
        scaled = cv2.resize(grey, size, interpolation=flag)
    return scaled, {"scale": factor, "size": list(size), "method": method}


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --- the run -----------------------------------------------------------------------------------------------------

def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of the image made at ``index``: the same whichever process makes it."""
    return np.random.default_rng([seed, 1, index])


def plan(total_images: int, similar_images: int, *, seed: int, fmt: str, run: str,
         transforms: Sequence[str]) -> list[Planned]:
    """Names, formats, and each copy's original and transform: everything drawn before any image is."""
    rng = np.random.default_rng([seed, 0])
    originals = total_images - similar_images
    numbers = rng.permutation(total_images) + 1
    width = max(5, len(str(total_images)))
    prefix = run.replace("/", "_")
    formats = [fmt if fmt != "mixed" else ("png" if rng.random() < 0.5 else "bmp") for _ in range(total_images)]
    items = [Planned(i, f"{prefix}_{numbers[i]:0{width}d}.{formats[i]}", formats[i]) for i in range(originals)]
    for i in range(originals, total_images):
        source = int(rng.integers(0, originals))
        kind = transforms[int(rng.integers(0, len(transforms)))]
        out = formats[i]
        if kind == "exact_copy" or (kind == "reencode" and fmt != "mixed"):
            out = formats[source]
        elif kind == "reencode":
            out = "bmp" if formats[source] == "png" else "png"
        items.append(Planned(i, f"{prefix}_{numbers[i]:0{width}d}.{out}", out, source, kind))
    return items


def make_group(run_dir: Path, settings: Settings, group: list[Planned]) -> list[tuple[int, str, dict, int]]:
    """Make one original and its copies, write them into ``run_dir``; (index, transform, params, cells) of each."""
    original, copies = group[0], group[1:]
    rng = image_rng(settings.seed, original.index)
    lo, hi = settings.cells
    cells = int(rng.integers(lo, hi + 1))
    grey = draw_frame(rng, settings.size, cells)
    bits = int(rng.choice([8, 24]))
    data = encode(grey, original.fmt, bmp_bits=bits)
    (run_dir / original.name).write_bytes(data)
    made = [(original.index, "original", {}, cells)]
    for copy in copies:
        rng = image_rng(settings.seed, copy.index)
        name, params = copy.kind, {}
        if copy.kind == "exact_copy":
            out = data
        elif copy.kind == "reencode" and settings.mixed:
            name, params = "reencode_format", {"to": copy.fmt, **({"bits": bits} if copy.fmt == "bmp" else {})}
            out = encode(grey, copy.fmt, bmp_bits=bits)
        elif copy.kind == "reencode":
            out, params = _reencode(grey, copy.fmt, bits, rng)
        else:
            pixels, params = transform(grey, copy.kind, rng)
            out = encode(pixels, copy.fmt, bmp_bits=int(rng.choice([8, 24])))
        (run_dir / copy.name).write_bytes(out)
        made.append((copy.index, name, params, cells))
    return made


def _single_threaded() -> None:
    cv2.setNumThreads(1)


def _groups(items: list[Planned], originals: int) -> list[list[Planned]]:
    groups: list[list[Planned]] = [[items[i]] for i in range(originals)]
    for item in items[originals:]:
        assert item.source is not None
        groups[item.source].append(item)
    return groups


def _chunks(groups: list[list[Planned]]) -> list[list[list[Planned]]]:
    chunks: list[list[list[Planned]]] = [[]]
    count = 0
    for group in groups:
        if count >= CHUNK:
            chunks.append([])
            count = 0
        chunks[-1].append(group)
        count += len(group)
    return chunks


def make_chunk(run_dir: Path, settings: Settings, groups: list[list[Planned]]) -> list[tuple[int, str, dict, int]]:
    """Worker entry point (module level, so that it can be pickled)."""
    return [entry for group in groups for entry in make_group(run_dir, settings, group)]


def generate(out: Path, total_images: int, similar_images: int, *, seed: int = 0, size: tuple[int, int] = (248, 248),
             fmt: str = "mixed", run: str = "run-0001", progress: bool | None = None,
             cells: tuple[int, int] = (1, 1), transforms: Sequence[str] = TRANSFORMS,
             workers: int | None = None) -> GeneratedRun:
    """Write ``total_images`` images, ``similar_images`` of them near-duplicates, into ``out/<run>/`` and the truth
    into ``out/<run>.truth.json``. ``cells``: the least and most cells per frame; ``transforms``: the copies'
    transforms to draw from (``TRANSFORMS``); ``workers``: processes (default: all cores; small runs stay in this
    process). The bytes depend on the arguments, never on ``workers``."""
    _check(total_images, similar_images, seed, size, fmt, cells, transforms)
    settings = Settings(tuple(size), tuple(cells), seed, fmt == "mixed")  # type: ignore[arg-type]
    items = plan(total_images, similar_images, seed=seed, fmt=fmt, run=run, transforms=list(transforms))
    originals = total_images - similar_images
    run_dir = out / run
    if run_dir.exists():
        raise FileExistsError(f"{run_dir} exists already: choose another OUT folder or --run name")
    run_dir.mkdir(parents=True)
    chunks = _chunks(_groups(items, originals))
    workers = workers or os.cpu_count() or 1
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=total_images, desc=f"generating {run}", unit="img", disable=not show or total_images < 200)
    made: list[tuple[int, str, dict, int]] = []
    try:
        if workers <= 1 or total_images < INLINE_BELOW:
            for chunk in chunks:
                made.extend(make_chunk(run_dir, settings, chunk))
                bar.update(sum(len(g) for g in chunk))
        else:
            made.extend(_in_pool(run_dir, settings, chunks, workers, bar))
    finally:
        bar.close()
    truth: dict[str, dict] = {}
    for index, name, params, cell_count in made:
        item = items[index]
        source = item if item.source is None else items[item.source]
        truth[item.name] = {"group": f"g{source.index:06d}", "role": "original" if item.source is None else "duplicate",
                            "transform": name, "params": params,
                            "derived_from": None if item.source is None else source.name, "cells": cell_count}
    truth_path = out / f"{run.replace('/', '_')}.truth.json"
    truth_path.write_text(json.dumps({"schema": SCHEMA, "run": run, "seed": seed, "size": list(size), "format": fmt,
                                      "cells": list(cells), "transforms": list(transforms),
                                      "files": dict(sorted(truth.items()))}, indent=1))
    return GeneratedRun(run_dir, truth_path, total_images, originals, similar_images)


def _in_pool(run_dir: Path, settings: Settings, chunks: list[list[list[Planned]]], workers: int,
             bar: tqdm) -> list[tuple[int, str, dict, int]]:
    # spawn, not the engine's forkserver: starting that server here would fix its preload and environment before
    # the engine configures them (the demo generates, then decides in the same process); two imports are cheap.
    context = multiprocessing.get_context("spawn")
    made: list[tuple[int, str, dict, int]] = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_single_threaded) as pool:
        futures: list[Future[list[tuple[int, str, dict, int]]]] = [
            pool.submit(make_chunk, run_dir, settings, chunk) for chunk in chunks]
        try:
            for future in futures:
                batch = future.result()
                made.extend(batch)
                bar.update(len(batch))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return made


def _check(total_images: int, similar_images: int, seed: int, size: tuple[int, int], fmt: str, cells: tuple[int, int],
           transforms: Sequence[str]) -> None:
    if seed < 0:
        raise ValueError(f"seed must be 0 or more (got {seed})")
    if total_images < 1 or not 0 <= similar_images < total_images:
        raise ValueError(f"need total images >= 1 and 0 <= similar images < total images "
                         f"(got {total_images} and {similar_images})")
    if fmt not in FORMATS:
        raise ValueError(f"format must be bmp, png or mixed, not {fmt!r}")
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"size must be WIDTHxHEIGHT with both at least 16 px (got {size})")
    if not 1 <= cells[0] <= cells[1] <= MAX_CELLS:
        raise ValueError(f"cells must be N or LOW-HIGH with 1 <= LOW <= HIGH <= {MAX_CELLS} (got {cells})")
    unknown = [t for t in transforms if t not in TRANSFORMS]
    if unknown or not transforms:
        raise ValueError(f"unknown transforms {unknown or '(none given)'}; choose from {', '.join(TRANSFORMS)}")


# --- command line ------------------------------------------------------------------------------------------------

def parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, e.g. 248x248, not {text!r}") from None
    return width, height


def parse_cells(text: str) -> tuple[int, int]:
    try:
        low, _, high = text.partition("-")
        return int(low), int(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cells must be N or LOW-HIGH, e.g. 1-4, not {text!r}") from None


def parse_transforms(text: str) -> tuple[str, ...]:
    if text == "all":
        return TRANSFORMS
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    unknown = [t for t in names if t not in TRANSFORMS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown transforms {unknown or '(none given)'}; choose from all or "
                                         f"{','.join(TRANSFORMS)}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = UsageParser(prog="python -m local_runner.generator", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--total-images", type=int, required=True)
    parser.add_argument("--similar-images", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=parse_size, default=(248, 248), help="WIDTHxHEIGHT (248x248)")
    parser.add_argument("--format", default="mixed", choices=FORMATS)
    parser.add_argument("--cells", type=parse_cells, default=(1, 1), help="cells per frame: N or LOW-HIGH (1)")
    parser.add_argument("--transforms", type=parse_transforms, default=TRANSFORMS,
                        help=f"the copies' transforms, comma-separated, or all (default): {', '.join(TRANSFORMS)}")
    parser.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, help="processes (all cores)")
    parser.add_argument("--run", default="run-0001")
    parser.add_argument("--no-progress", action="store_true")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        made = generate(args.out, args.total_images, args.similar_images, seed=args.seed, size=args.size,
                        fmt=args.format, run=args.run, cells=args.cells, transforms=args.transforms,
                        workers=args.workers, progress=False if args.no_progress else None)
    except (ValueError, FileExistsError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    print(f"{made.total} images ({made.originals} distinct, {made.duplicates} near-duplicates) in {made.run_dir}; "
          f"truth in {made.truth_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
