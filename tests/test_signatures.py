from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import example, given, settings, strategies as st

from dedup_engine.decoding import decode
from dedup_engine.grouping import SIGNATURE_REACH, SIGNATURE_SLACK
from dedup_engine.proof import prepare
from dedup_engine.signatures import DIMENSIONS, NearestSignatures, SignatureTable, centred, layout
from local_runner.generator import draw_frame, shift

def _signature(grey: np.ndarray) -> np.ndarray:
    return layout(grey, 4)[0]


def _engine_layout(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The layout signature as a fingerprint makes it: from the proof image (the frame reduced by a whole factor)."""
    proof = prepare(grey)
    return layout(proof.pixels, 4, proof.factor)


def _grey(path: Path) -> np.ndarray:
    return decode(path.read_bytes(), path=path.name, max_pixels=10**8).grey


def test_a_signature_ignores_gain_and_offset_and_is_unit_length(engine_data: Path) -> None:
    grey = _grey(next(p for p in sorted(engine_data.iterdir()) if p.suffix == ".png"))
    brighter = np.clip(np.rint(grey * 1.04 + 3), 0, 255).astype(np.uint8)
    a, b = _signature(grey), _signature(brighter)
    assert a.shape == (DIMENSIONS,) and abs(float(np.linalg.norm(a)) - 1.0) < 1e-4
    assert float(((a - b) ** 2).sum()) < 0.01
    assert not _signature(np.full((40, 40), 7, np.uint8)).any()  # a flat frame has no layout


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), dy=st.floats(-4, 4), dx=st.floats(-4, 4), cells=st.integers(1, 3))
@example(seed=622, dy=2.0, dx=0.0, cells=1)
def test_a_shifted_copy_stays_within_the_reach_of_its_signatures(seed: int, dy: float, dx: float, cells: int) -> None:
    """Whatever the shift's size or fraction, a copy of a CytPix-like frame is within the reach the grouper looks
    at (twice the larger sensitivity plus slack), by its signature or its centred signature."""
    frame = draw_frame(np.random.default_rng(seed), (248, 248), cells)
    moved = shift(frame, dy, dx)
    (a, sa), (b, sb) = _engine_layout(frame), _engine_layout(moved)
    ca, cb = centred(prepare(frame).pixels), centred(prepare(moved).pixels)
    assert ca is not None and cb is not None
    closeness = min(float(((a - b) ** 2).sum()), float(((ca - cb) ** 2).sum()))
    assert closeness <= SIGNATURE_REACH * (max(sa, sb) + SIGNATURE_SLACK), (closeness, sa, sb)


def test_a_signature_from_the_proof_image_is_the_frames_own(engine_data: Path) -> None:
    """Area averages compose: the thumbnail of the frame reduced by 2 is the frame's thumbnail but for rounding,
    so the signature and the sensitivity made from the proof image are the frame's (well within the slack)."""
    real = sorted(engine_data.iterdir()) + sorted((engine_data.parent / "frames").iterdir())
    frames = [grey for grey in (_grey(p) for p in real if p.suffix in (".png", ".bmp")) if prepare(grey).factor > 1]
    frames += [draw_frame(np.random.default_rng(seed), (248, 248), 2) for seed in range(10)]
    assert len(frames) >= 14
    for grey in frames:
        (a, sa), (b, sb) = layout(grey, 4), _engine_layout(grey)
        assert float(((a - b) ** 2).sum()) < SIGNATURE_SLACK / 4  # measured: at most 0.0013
        assert abs(sa - sb) < SIGNATURE_SLACK / 2 + 0.05 * sa


def test_labelled_real_copies_stay_within_the_reach(engine_data: Path, engine_truth: dict) -> None:
    checked = 0
    for pair in engine_truth["duplicate_pairs"]:
        a, b = _grey(engine_data / pair["original"]), _grey(engine_data / pair["copy"])
        (sa, ka), (sb, kb) = _engine_layout(a), _engine_layout(b)
        ca, cb = centred(prepare(a).pixels), centred(prepare(b).pixels)
        closeness = float(((sa - sb) ** 2).sum())
        if ca is not None and cb is not None:
            closeness = min(closeness, float(((ca - cb) ** 2).sum()))
        assert closeness <= SIGNATURE_REACH * (max(ka, kb) + SIGNATURE_SLACK), (pair, closeness, ka, kb)
        checked += 1
    assert checked >= 10


def test_a_frame_without_foreground_has_no_centred_hash() -> None:
    assert centred(np.full((124, 124), 90, np.uint8)) is None


def test_signatures_rank_the_original_of_each_labelled_copy_first(engine_data: Path, engine_truth: dict) -> None:
    """Among every other image of the test set, the one a copy was made from has the nearest signature (or the
    nearest centred signature): what lets the proof see the original first among look-alikes."""
    paths = sorted(p for p in engine_data.iterdir() if p.suffix in (".png", ".bmp"))
    table, centred_table = SignatureTable(), SignatureTable()
    for item, path in enumerate(paths):
        grey = _grey(path)
        table.add(item, _signature(grey))
        found = centred(prepare(grey).pixels)
        centred_table.add(item, found if found is not None else np.zeros(DIMENSIONS, np.float32))
    index = {path.name: item for item, path in enumerate(paths)}
    firsts = total = 0
    for pair in engine_truth["duplicate_pairs"]:
        if pair["transform"] == "exact_copy":
            continue
        copy, original = index[pair["copy"]], index[pair["original"]]
        others = np.array([i for i in range(len(paths)) if i != copy])
        grey = _grey(engine_data / pair["copy"])
        found = centred(prepare(grey).pixels)
        closeness = table.distances(others, _signature(grey))
        if found is not None:
            closeness = np.minimum(closeness, centred_table.distances(others, found))
        firsts += int(others[int(np.argmin(closeness))] == original)
        total += 1
    assert total >= 10 and firsts >= 0.9 * total, (firsts, total)


@pytest.mark.parametrize("flat_limit", [1000, 120])
def test_the_nearest_signatures_match_a_brute_force_search(flat_limit: int) -> None:
    """Exhaustive up to flat_limit signatures (the exact answer, nearest first), then from the graph it builds of
    them (approximate, but nearly always exact at this size)."""
    rng = np.random.default_rng(5)
    values = rng.normal(size=(300, DIMENSIONS)).astype(np.float32)
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    values[7] = values[200] = 0.0  # flat images: zero signatures (before and after the graph is built)
    index = NearestSignatures(flat_limit=flat_limit)
    assert index.nearest(values[0], 5) == []
    for item, value in enumerate(values):
        index.add(1000 + item, value)
        if item == 60:  # still exhaustive in both cases: exact, nearest first, fewer than asked when so few
            query = values[3] + 0.01
            exact = (1000 + np.argsort(((values[:61] - query) ** 2).sum(axis=1), kind="stable")).tolist()
            assert index.nearest(query, 8) == exact[:8] and index.nearest(query, 100) == exact
    agree = 0
    for query in values[:50] + rng.normal(scale=0.05, size=(50, DIMENSIONS)).astype(np.float32):
        exact = 1000 + np.argsort(((values - query) ** 2).sum(axis=1))[:8]
        found = index.nearest(query, 8)
        assert len(found) == 8 and len(set(found)) == 8
        agree += len(set(found) & set(exact.tolist()))
    assert agree >= (1.0 if flat_limit >= len(values) else 0.95) * 50 * 8
    assert len(index) == len(values)


def test_the_graph_takes_and_answers_only_whole_float32_signatures() -> None:
    """The graph is called through faiss' C functions, which read a bare pointer: a signature of another length is
    refused (not read past its end), one of another type or layout is converted, and the answers are the same as
    for the float32 original."""
    rng = np.random.default_rng(9)
    values = rng.normal(size=(40, DIMENSIONS)).astype(np.float32)
    values /= np.linalg.norm(values, axis=1, keepdims=True)
    index = NearestSignatures(flat_limit=10)
    for item, value in enumerate(values):
        index.add(item, value)
    with pytest.raises(ValueError, match="values"):
        index.add(99, values[0][:-1])
    with pytest.raises(ValueError, match="values"):
        index.nearest(np.zeros(DIMENSIONS + 1, np.float32), 4)
    query = values[4] + 0.01
    expected = index.nearest(query, 6)
    assert expected[0] == 4
    assert index.nearest(query.astype(np.float64), 6) == expected
    strided = np.zeros((DIMENSIONS, 2), np.float32)
    strided[:, 0] = query
    assert index.nearest(strided[:, 0], 6) == expected
    many = index.nearest(query, 60)  # more than the graph holds, and than the answer buffers first held
    assert many[:6] == expected and 30 <= len(many) <= 40 and len(set(many)) == len(many)


def _explicit_layout(grey: np.ndarray, max_shift_px: int, factor: int) -> tuple[np.ndarray, float]:
    """The layout signature made step by step, as its docstring describes it: an area-averaged THUMB x THUMB
    thumbnail (in floats), shifted by linear interpolation with replicated edges, and the low DCT of each."""
    def low(thumb: np.ndarray) -> np.ndarray:
        values = cv2.dct(thumb.astype(np.float32))[:8, :8].ravel()[1:].astype(np.float64)
        norm = float(np.linalg.norm(values))
        return values / norm if norm > 1e-3 else np.zeros_like(values)

    thumb = cv2.resize(grey.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    value = low(thumb)
    step = max_shift_px * 32 / (max(grey.shape) * factor)
    moved = 0.0
    for dx, dy in ((step, 0.0), (0.0, step)):
        shifted = cv2.warpAffine(thumb, np.float32([[1, 0, dx], [0, 1, dy]]), (32, 32), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
        moved = max(moved, float(((low(shifted) - value) ** 2).sum()))
    return value, moved


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), height=st.integers(33, 200), width=st.integers(33, 200),
       cells=st.integers(1, 3), factor=st.sampled_from([1, 2]))
def test_the_layout_signature_as_matrix_products_is_the_step_by_step_one(seed: int, height: int, width: int,
                                                                         cells: int, factor: int) -> None:
    grey = draw_frame(np.random.default_rng(seed), (height, width), cells)
    value, moved = layout(grey, 4, factor)
    expected, expected_moved = _explicit_layout(grey, 4, factor)
    assert np.abs(value - expected).max() < 2e-4
    assert abs(moved - expected_moved) < 2e-4 + 0.01 * expected_moved


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), background=st.integers(0, 255), spread=st.integers(0, 60),
       cells=st.integers(1, 3))
def test_the_centred_signatures_foreground_by_table_is_the_saturating_one(seed: int, background: int, spread: int,
                                                                          cells: int) -> None:
    """The foreground weights by one table look-up equal max(|level - background| - threshold, 0) made with
    OpenCV's saturating arithmetic, and so give the same window and signature."""
    rng = np.random.default_rng(seed)
    frame = draw_frame(rng, (124, 124), cells).astype(np.int16) + background - 128
    frame = np.clip(frame + rng.integers(-spread, spread + 1, frame.shape), 0, 255).astype(np.uint8)
    found = centred(frame)
    histogram = cv2.calcHist([frame], [0], None, [256], [0, 256]).ravel()
    level = int(np.searchsorted(np.cumsum(histogram), histogram.sum() / 2))
    deviation = cv2.absdiff(frame, np.full_like(frame, level))
    deviations = cv2.calcHist([deviation], [0], None, [256], [0, 256]).ravel()
    typical = int(np.searchsorted(np.cumsum(deviations), deviations.sum() / 2))
    weights = cv2.subtract(deviation, np.full_like(deviation, min(255, 3 * typical + 1)))
    moments = cv2.moments(weights)
    if moments["m00"] <= 0:
        assert found is None
        return
    cy, cx = moments["m01"] / moments["m00"], moments["m10"] / moments["m00"]
    radius = float(np.sqrt((moments["mu20"] + moments["mu02"]) / moments["m00"]))
    side = int(np.clip(round(4.0 * radius), 8.0, 2 * 124))
    window = cv2.getRectSubPix(frame, (side, side), (cx, cy))
    thumb = cv2.resize(window.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    values = cv2.dct(thumb)[:8, :8].ravel()[1:]
    assert found is not None
    norm = float(np.linalg.norm(values))
    if norm > 1e-3:
        assert np.abs(found - values / norm).max() < 2e-4
