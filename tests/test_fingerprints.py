"""Fingerprints computed step by step over a batch are the fingerprints of each file alone: the same fields, in
the same order, with a bad file's failure in its place, one image's surprise failing that image only, and a batch
bounded in decoded pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dedup_engine import fingerprints
from dedup_engine.fingerprints import Failure, Fingerprint, fingerprint_many
from dedup_engine.models import DedupParams
from test_slotted import _equal


def _unreadable() -> bytes:
    raise PermissionError(13, "Permission denied")


@pytest.fixture(scope="module")
def sources(engine_data: Path, bad_inputs: Path) -> list[tuple[str, object]]:
    """Real frames (PNG and BMP, several sizes) with every bad input, a text file and an unreadable file between."""
    frames = sorted(p for p in engine_data.iterdir() if p.suffix in (".png", ".bmp"))[:24]
    bad = sorted(p for p in bad_inputs.iterdir() if p.suffix in (".png", ".bmp"))
    mixed: list[tuple[str, object]] = []
    for place, frame in enumerate(frames):
        mixed.append((frame.name, frame.read_bytes()))
        if place < len(bad):
            mixed.append((bad[place].name, bad[place].read_bytes()))
    mixed.insert(5, ("notes.txt", b"written by hand\n"))
    mixed.insert(9, ("locked.png", _unreadable))
    return mixed


def _one_by_one(sources: list[tuple[str, object]], params: DedupParams, monkeypatch: pytest.MonkeyPatch,
                **flags: bool) -> list[Fingerprint | Failure]:
    """Each file in a batch of its own: every step runs on it before the next file is read."""
    with monkeypatch.context() as patch:
        patch.setattr(fingerprints, "BATCH_PIXELS", 1)
        return fingerprint_many(sources, params, **flags)


@pytest.mark.parametrize("params, flags", [
    (DedupParams(), {}),
    (DedupParams(), {"pack": True, "preview": True}),
    (DedupParams(method="mse", keep="sharpest"), {"preview": True}),
])
def test_a_batch_gives_each_file_its_own_fingerprint_in_order(sources: list[tuple[str, object]], params: DedupParams,
                                                               flags: dict[str, bool],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    batched = fingerprint_many(sources, params, **flags)
    alone = _one_by_one(sources, params, monkeypatch, **flags)
    assert [result.path for result in batched] == [path for path, _ in sources]
    for one, other in zip(batched, alone, strict=True):
        _equal(one, other)
    kinds = {type(result).__name__ for result in batched}
    assert kinds == {"Fingerprint", "Failure"}
    failed = {result.path: result for result in batched if isinstance(result, Failure)}
    assert failed["notes.txt"].status == "passthrough"
    assert "Permission denied" in failed["locked.png"].message and failed["locked.png"].status == "error"
    assert "zero_byte.bmp" in failed and "truncated.png" in failed
    if flags.get("preview"):
        assert all(result.preview for result in batched if isinstance(result, Fingerprint))
    if params.method == "mse":
        assert all(result.pixels is not None and result.proof is None for result in batched
                   if isinstance(result, Fingerprint))
        assert any(result.sharpness > 0 for result in batched if isinstance(result, Fingerprint))


def test_a_step_that_fails_on_one_image_fails_that_image_alone(sources: list[tuple[str, object]],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    params = DedupParams()
    before = fingerprint_many(sources, params)
    victim = next(result for result in before if isinstance(result, Fingerprint))
    real = fingerprints.layout

    def surprised(pixels: np.ndarray, *args: object) -> object:
        if pixels is victim.proof.pixels or np.array_equal(pixels, victim.proof.pixels):
            raise ValueError("an image this step did not expect")
        return real(pixels, *args)

    monkeypatch.setattr(fingerprints, "layout", surprised)
    after = fingerprint_many(sources, params)
    assert [result.path for result in after] == [result.path for result in before]
    for one, other in zip(before, after, strict=True):
        if one.path == victim.path:
            assert isinstance(other, Failure) and other.status == "error"
            assert other.sha256 == victim.sha256 and other.size_bytes == victim.size_bytes
            assert "ValueError: an image this step did not expect" in other.message
            assert "left where it is" in other.message
        else:
            _equal(one, other)


def test_a_batch_holds_a_bounded_number_of_decoded_pixels(sources: list[tuple[str, object]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[list[int]] = []
    real = fingerprints._fingerprint_decoded

    def recorded(batch: list, *args: object, **kwargs: object) -> list:
        batches.append([decoded.image.width * decoded.image.height for decoded in batch])
        return real(batch, *args, **kwargs)

    budget = 50_000  # a few of these frames (40x40 to 256x256)
    monkeypatch.setattr(fingerprints, "BATCH_PIXELS", budget)
    monkeypatch.setattr(fingerprints, "_fingerprint_decoded", recorded)
    results = fingerprint_many(sources, DedupParams())
    decoded = sum(isinstance(result, Fingerprint) for result in results)
    assert sum(len(batch) for batch in batches) == decoded
    assert len(batches) > 3
    # a batch is run as soon as it reaches the budget: below it before its last image
    assert all(sum(batch[:-1]) < budget for batch in batches)
