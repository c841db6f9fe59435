"""The synthetic generator (local_runner/generator.py): the truth lists exactly the files written, each copy is what
its transform and params say (checked on the decoded pixels, independently of the generator's code), a seed gives
the same bytes whatever the worker count, and bad arguments are one line with exit 2."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from local_runner import generator
from local_runner.generator import TRANSFORMS, generate, main

from conftest import tree_digest


def _truth(made: generator.GeneratedRun) -> dict:
    return json.loads(made.truth_path.read_text())["files"]


def _grey(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L")).astype(np.float64)


def _pairs(made: generator.GeneratedRun) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(truth entry, original pixels, copy pixels) of every copy."""
    truth = _truth(made)
    return [(entry, _grey(made.run_dir / entry["derived_from"]), _grey(made.run_dir / name))
            for name, entry in sorted(truth.items()) if entry["role"] == "duplicate"]


def _only(tmp_path: Path, transform: str, copies: int = 10, **options: object) -> generator.GeneratedRun:
    return generate(tmp_path / transform, copies + 6, copies, seed=11, progress=False, transforms=[transform],
                    **options)  # type: ignore[arg-type]


def phase_shift(original: np.ndarray, moved: np.ndarray) -> tuple[float, float]:
    """(dy, dx) by which ``moved``'s content lies from ``original``'s, by phase correlation: the slope of the
    cross-power spectrum's phase over the low frequencies (least squares, weighted by magnitude), after a high-pass
    that removes the background and a Hanning window over the interior (the replicated edges left out)."""
    a, b = (x - cv2.GaussianBlur(x, (0, 0), 8) for x in (original, moved))
    a, b = a[8:-8, 8:-8], b[8:-8, 8:-8]
    h, w = a.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    cross = np.conj(np.fft.fft2(a * window)) * np.fft.fft2(b * window)
    u = np.broadcast_to(np.fft.fftfreq(w)[None, :], (h, w))
    v = np.broadcast_to(np.fft.fftfreq(h)[:, None], (h, w))
    low = (u * w) ** 2 + (v * h) ** 2 <= 12**2  # phases stay within +-pi for shifts of up to 4 px
    weight = np.sqrt(np.abs(cross[low]))
    design = np.stack([-2 * np.pi * v[low], -2 * np.pi * u[low]], axis=1) * weight[:, None]
    (dy, dx), *_ = np.linalg.lstsq(design, np.angle(cross[low]) * weight, rcond=None)
    return float(dy), float(dx)


def test_the_truth_lists_every_file_with_its_group_role_and_origin(tmp_path: Path) -> None:
    made = generate(tmp_path, 80, 30, seed=2, progress=False, cells=(1, 3))
    truth = _truth(made)
    files = {p.name for p in made.run_dir.iterdir()}
    assert set(truth) == files and len(files) == 80
    assert Counter(e["role"] for e in truth.values()) == {"original": 50, "duplicate": 30}
    originals = {name: e for name, e in truth.items() if e["role"] == "original"}
    assert len({e["group"] for e in originals.values()}) == 50  # one group per distinct image
    for name, entry in truth.items():
        assert set(entry) == {"group", "role", "transform", "params", "derived_from", "cells"}
        if entry["role"] == "duplicate":
            source = originals[entry["derived_from"]]
            assert entry["group"] == source["group"] and entry["cells"] == source["cells"]
            assert entry["transform"] in TRANSFORMS + ("reencode_format",)
        else:
            assert entry["derived_from"] is None and entry["transform"] == "original"
        with Image.open(made.run_dir / name) as image:  # the extension says the format
            assert image.format.lower() == name.rsplit(".", 1)[1]
    assert {e["cells"] for e in truth.values()} == {1, 2, 3}
    assert made.originals == 50 and made.duplicates == 30


def test_several_cells_per_frame_are_there_to_see(tmp_path: Path) -> None:
    made = generate(tmp_path, 24, 0, seed=4, progress=False, cells=(1, 4))
    found = {}
    for name, entry in _truth(made).items():
        image = _grey(made.run_dir / name).astype(np.float32)
        structure = (np.abs(image - cv2.GaussianBlur(image, (0, 0), 25)) > 18).astype(np.uint8)
        structure = cv2.morphologyEx(structure, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        _, _, stats, _ = cv2.connectedComponentsWithStats(structure)
        found[name] = (entry["cells"], int((stats[1:, cv2.CC_STAT_AREA] > 150).sum()))
    assert {cells for cells, _ in found.values()} == {1, 2, 3, 4}
    assert all(abs(cells - blobs) <= 1 for cells, blobs in found.values()), found  # cells may touch or leave
    assert sum(cells == blobs for cells, blobs in found.values()) >= 0.8 * len(found), found


def test_exact_copies_have_the_same_bytes(tmp_path: Path) -> None:
    made = _only(tmp_path, "exact_copy")
    for name, entry in _truth(made).items():
        if entry["role"] == "duplicate":
            assert (made.run_dir / name).read_bytes() == (made.run_dir / entry["derived_from"]).read_bytes()


@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_a_single_format_stays_single_and_reencodes_within_it(tmp_path: Path, fmt: str) -> None:
    made = _only(tmp_path, "reencode", fmt=fmt)
    truth = _truth(made)
    for name in truth:
        assert (made.run_dir / name).read_bytes()[:2] == (b"\x89P" if fmt == "png" else b"BM")
    for name, entry in truth.items():
        if entry["role"] != "duplicate":
            continue
        copy, source = made.run_dir / name, made.run_dir / entry["derived_from"]
        assert entry["transform"] == "reencode" and entry["params"]["format"] == fmt
        assert copy.read_bytes() != source.read_bytes()
        assert np.array_equal(_grey(copy), _grey(source))
        with Image.open(copy) as image:
            if fmt == "png":
                assert image.mode == entry["params"]["mode"]
            else:
                assert image.mode == {8: "L", 24: "RGB"}[entry["params"]["bits"]]


def test_mixed_runs_reencode_to_the_other_format(tmp_path: Path) -> None:
    made = _only(tmp_path, "reencode", fmt="mixed")
    for name, entry in _truth(made).items():
        if entry["role"] == "duplicate":
            assert entry["transform"] == "reencode_format"
            assert name.rsplit(".", 1)[1] == entry["params"]["to"] != entry["derived_from"].rsplit(".", 1)[1]
            assert np.array_equal(_grey(made.run_dir / name), _grey(made.run_dir / entry["derived_from"]))


def test_brightness_noise_and_jpeg_are_what_the_params_say(tmp_path: Path) -> None:
    for entry, original, copy in _pairs(_only(tmp_path, "brightness")):
        assert np.abs(copy - original * entry["params"]["gain"]).max() <= 0.5 + 1e-6
    for entry, original, copy in _pairs(_only(tmp_path, "gaussian_noise")):
        difference = copy - original
        assert abs(difference.mean()) < 0.1 and abs(difference.std() - entry["params"]["sigma"]) < 0.2
    for entry, original, copy in _pairs(_only(tmp_path, "jpeg_recompress")):
        buffer = io.BytesIO()
        Image.fromarray(original.astype(np.uint8)).save(buffer, "JPEG", quality=entry["params"]["quality"])
        assert np.array_equal(copy, np.asarray(Image.open(buffer).convert("L")))


def test_whole_pixel_shifts_move_the_content_exactly(tmp_path: Path) -> None:
    seen = set()
    for entry, original, copy in _pairs(_only(tmp_path, "shift", copies=16)):
        dy, dx = entry["params"]["dy"], entry["params"]["dx"]
        assert isinstance(dy, int) and isinstance(dx, int) and (dy, dx) != (0, 0) and max(abs(dy), abs(dx)) <= 4
        h, w = original.shape
        assert np.array_equal(copy[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)],
                              original[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)])
        seen.update(abs(v) % 2 for v in (dy, dx))
    assert seen == {0, 1}  # odd shifts too


def test_fractional_shifts_are_found_again_by_phase_correlation(tmp_path: Path) -> None:
    fractions = set()
    for entry, original, copy in _pairs(_only(tmp_path, "subpixel_shift", copies=16, cells=(1, 3))):
        dy, dx = entry["params"]["dy"], entry["params"]["dx"]
        assert max(abs(dy), abs(dx)) <= 4 and not (float(dy).is_integer() and float(dx).is_integer())
        assert entry["params"]["interpolation"] in ("cubic", "lanczos4")
        found = phase_shift(original, copy)
        assert abs(found[0] - dy) <= 0.1 and abs(found[1] - dx) <= 0.1, (entry["params"], found)
        fractions.update(round(abs(v) % 1, 1) for v in (dy, dx))
    assert len(fractions) >= 5  # not only halves


def test_crops_take_what_the_params_say_off_each_side(tmp_path: Path) -> None:
    for entry, original, copy in _pairs(_only(tmp_path, "crop", copies=16)):
        p = entry["params"]
        assert all(0 <= p[side] <= 4 for side in ("top", "bottom", "left", "right")) and sum(p.values()) > 0
        h, w = original.shape
        assert copy.shape == (h - p["top"] - p["bottom"], w - p["left"] - p["right"])
        assert np.array_equal(copy, original[p["top"] : h - p["bottom"], p["left"] : w - p["right"]])


def test_resizes_go_both_ways_by_two_to_ten_percent(tmp_path: Path) -> None:
    scales, methods = [], set()
    for entry, original, copy in _pairs(_only(tmp_path, "resize", copies=20)):
        p = entry["params"]
        h, w = original.shape
        assert 0.02 <= abs(p["scale"] - 1) <= 0.10
        assert copy.shape == (p["size"][1], p["size"][0]) == (round(h * p["scale"]), round(w * p["scale"]))
        back = cv2.resize(copy, (w, h), interpolation=cv2.INTER_CUBIC)  # the same frame, not another one
        assert np.abs(back - original)[8:-8, 8:-8].mean() < 2.5
        scales.append(p["scale"])
        methods.add(p["method"])
    assert min(scales) < 1 < max(scales) and methods == {"pillow_lanczos", "cv2_area", "cv2_cubic"}


def test_combinations_record_each_step_in_order(tmp_path: Path) -> None:
    for entry, original, copy in _pairs(_only(tmp_path, "resize+jpeg_recompress+brightness")):
        steps = entry["params"]["steps"]
        assert [s["transform"] for s in steps] == ["resize", "jpeg_recompress", "brightness"]
        assert copy.shape == tuple(reversed(steps[0]["params"]["size"]))
    for entry, original, copy in _pairs(_only(tmp_path, "subpixel_shift+jpeg_recompress")):
        shift = entry["params"]["steps"][0]["params"]
        found = phase_shift(original, copy)
        assert abs(found[0] - shift["dy"]) <= 0.15 and abs(found[1] - shift["dx"]) <= 0.15


def test_every_transform_is_drawn_by_default(tmp_path: Path) -> None:
    truth = _truth(generate(tmp_path, 300, 200, seed=3, progress=False, size=(64, 64)))
    drawn = {e["transform"] for e in truth.values() if e["role"] == "duplicate"}
    assert drawn == (set(TRANSFORMS) - {"reencode"}) | {"reencode_format"}


def test_a_seed_gives_the_same_bytes_whatever_the_worker_count(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(generator, "INLINE_BELOW", 0)  # use the pool even for a small run
    monkeypatch.setattr(generator, "CHUNK", 8)
    runs = [generate(tmp_path / str(n), 70, 30, seed=9, progress=False, cells=(1, 3), workers=n) for n in (1, 2, 3)]
    digests = [tree_digest(made.run_dir) for made in runs]
    assert len(digests[0]) == 70 and digests[0] == digests[1] == digests[2]
    assert runs[0].truth_path.read_text() == runs[1].truth_path.read_text() == runs[2].truth_path.read_text()
    other = generate(tmp_path / "other", 70, 30, seed=10, progress=False, cells=(1, 3), workers=2)
    assert set(tree_digest(other.run_dir).values()).isdisjoint(digests[0].values())


@pytest.mark.parametrize("args, says", [
    (["--size", "300"], "WIDTHxHEIGHT"),
    (["--size", "8x8"], "at least 16"),
    (["--format", "gif"], "invalid choice"),
    (["--cells", "0"], "cells"),
    (["--cells", "4-2"], "cells"),
    (["--cells", "two"], "LOW-HIGH"),
    (["--transforms", "shift,twirl"], "twirl"),
    (["--similar-images", "20"], "similar images"),
    (["--total-images", "many"], "invalid int"),
    (["--seed", "-1"], "seed"),
    (["--workers", "0"], "workers"),
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path: Path, capsys, args: list[str], says: str) -> None:
    argv = [str(tmp_path), "--total-images", "20", "--similar-images", "5"]
    for i in range(0, len(args), 2):  # the case's value replaces the default one
        if args[i] in argv:
            argv[argv.index(args[i]) + 1] = args[i + 1]
        else:
            argv += args[i : i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert not (tmp_path / "run-0001").exists()


def test_an_existing_run_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    argv = [str(tmp_path), "--total-images", "4", "--similar-images", "1", "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "exists already" in err
