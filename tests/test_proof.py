from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np

from dedup_engine.decoding import decode
from dedup_engine.proof import ProofImage, prepare
from dedup_engine.models import DedupParams
from dedup_engine.proof import prove

PARAMS = DedupParams()


def _grey(path: Path) -> ProofImage:
    return prepare(decode(path.read_bytes(), path=path.name, max_pixels=10**8).grey)


def test_every_labelled_copy_passes(engine_data: Path, engine_truth: dict) -> None:
    for pair in engine_truth["duplicate_pairs"]:
        result = prove(_grey(engine_data / pair["original"]), _grey(engine_data / pair["copy"]),
                       max_residual=PARAMS.max_residual, max_shift_px=PARAMS.max_shift_px)
        assert result.passed, (pair, result)
        assert result.residual <= PARAMS.max_residual


def test_no_hard_negative_comes_near_the_threshold(engine_data: Path, engine_truth: dict) -> None:
    checked = 0
    for negative in engine_truth["hard_negatives"]:
        for a, b in combinations(negative["originals"], 2):
            for x, y in ((a, b), (b, a)):
                result = prove(_grey(engine_data / x), _grey(engine_data / y),
                               max_residual=PARAMS.max_residual, max_shift_px=PARAMS.max_shift_px)
                # the closest distinct pair of realdup-dev scores 0.97: keep at least that margin
                assert not result.passed and result.residual > 1.25 * PARAMS.max_residual, (x, y, result)
                checked += 1
    assert checked >= 10


def test_empty_frames_are_never_near_duplicates() -> None:
    rng = np.random.default_rng(0)
    a = np.clip(100 + rng.normal(0, 0.5, (40, 40)), 0, 255).astype(np.uint8)
    b = np.clip(100 + rng.normal(0, 0.5, (40, 40)), 0, 255).astype(np.uint8)
    assert not prove(prepare(a), prepare(b), max_residual=10.0, max_shift_px=4).passed


def test_a_shifted_copy_is_registered() -> None:
    rng = np.random.default_rng(3)
    import cv2

    base = cv2.GaussianBlur(rng.uniform(0, 255, (60, 60)).astype(np.float32), (0, 0), 2)
    shifted = np.roll(np.roll(base, 2, axis=0), -3, axis=1)
    result = prove(prepare(base[5:55, 5:55].astype(np.uint8)), prepare(shifted[5:55, 5:55].astype(np.uint8)),
                   max_residual=0.75, max_shift_px=4)
    assert result.passed and result.shift == (-2, 3)
