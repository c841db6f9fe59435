"""Fingerprints computed step by step over a batch are the fingerprints of each file alone: every field as the
steps give it for that file, in the same order, with a bad file's failure in its place, one image's surprise in
any step failing that image only (with its own cause), and a batch bounded in decoded pixels."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import pytest

from dedup_engine import fingerprints
from dedup_engine.decoding import decode
from dedup_engine.fingerprints import Failure, Fingerprint, fingerprint, fingerprint_many
from dedup_engine.hashing import hash_hex, perceptual_hash
from dedup_engine.models import DedupParams
from dedup_engine.previews import preview_jpeg
from dedup_engine.proof import prepare
from dedup_engine.signatures import foreground, layout
from test_slotted import _equal


def _unreadable() -> bytes:
    raise PermissionError(13, "Permission denied")


@pytest.fixture(scope="module")
def frames(engine_data: Path) -> list[tuple[str, bytes]]:
    """Real frames (PNG and BMP, 40 to 256 px), each with pixels of its own."""
    chosen: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    for path in sorted(p for p in engine_data.iterdir() if p.suffix in (".png", ".bmp")):
        grey = decode(path.read_bytes(), path=path.name, max_pixels=10**8).grey
        digest = hashlib.sha256(grey.tobytes() + str(grey.shape).encode()).digest()
        if digest not in seen:
            seen.add(digest)
            chosen.append((path.name, path.read_bytes()))
        if len(chosen) == 24:
            return chosen
    raise AssertionError("tests/data/engine holds fewer than 24 distinct frames")


@pytest.fixture(scope="module")
def sources(frames: list[tuple[str, bytes]], bad_inputs: Path) -> list[tuple[str, Any]]:
    """The frames with every bad input, a text file and an unreadable file between them."""
    bad = sorted(p for p in bad_inputs.iterdir() if p.suffix in (".png", ".bmp"))
    mixed: list[tuple[str, Any]] = []
    for place, (name, data) in enumerate(frames):
        mixed.append((name, data))
        if place < len(bad):
            mixed.append((bad[place].name, bad[place].read_bytes()))
    mixed.insert(5, ("notes.txt", b"written by hand\n"))
    mixed.insert(9, ("locked.png", _unreadable))
    return mixed


def _reference(name: str, data: bytes, params: DedupParams, preview: bool, pack: bool) -> Fingerprint:
    """One good file's fingerprint composed here from the steps themselves, as the engine did one file at a time."""
    image = decode(data, path=name, max_pixels=params.max_pixels)
    hashed = hash_hex(perceptual_hash(image.grey, params.hash_algorithm, params.hash_size))
    proof = prepare(image.grey, params.max_shift_px, pack=pack) if params.method == "hash" else None
    found = foreground(proof.pixels) if proof is not None else None
    signed = layout(proof.pixels, params.max_shift_px, proof.factor) if proof is not None else None
    return Fingerprint(
        path=name, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), format=image.format,
        width=image.width, height=image.height, pixel_digest=fingerprints._pixel_digest(image.pixels),
        hash_hex=hashed, hash_int=int(hashed, 16), proof=proof,
        signature=signed[0] if signed else None, sensitivity=signed[1] if signed else 0.0,
        centred_signature=found[0] if found else None, centroid=found[1] if found else None,
        sharpness=float(cv2.Laplacian(image.grey, cv2.CV_32F).var()) if params.keep == "sharpest" else 0.0,
        pixels=fingerprints._mse_pixels(image.pixels) if params.method == "mse" else None,
        preview=preview_jpeg(image.grey) if preview else None,
    )


@pytest.mark.parametrize("params, flags", [
    (DedupParams(), {}),
    (DedupParams(), {"pack": True, "preview": True}),
    (DedupParams(method="mse", keep="sharpest"), {"preview": True}),
    (DedupParams(hash_algorithm="dhash", hash_size=16, max_shift_px=2), {}),
])
def test_a_batch_gives_each_file_its_own_fingerprint_in_order(sources: list[tuple[str, Any]], params: DedupParams,
                                                               flags: dict[str, bool]) -> None:
    batched = fingerprint_many(sources, params, **flags)
    assert [result.path for result in batched] == [path for path, _ in sources]
    failed = {result.path: result for result in batched if isinstance(result, Failure)}
    for (name, data), result in zip(sources, batched):
        if name not in failed:
            _equal(result, _reference(name, data, params, flags.get("preview", False), flags.get("pack", False)))
        else:
            _equal(result, fingerprint(name, data, params, **flags))  # a file alone fails the same way
    assert failed["notes.txt"].status == "passthrough"
    assert "Permission denied" in failed["locked.png"].message and failed["locked.png"].status == "error"
    assert {"zero_byte.bmp", "truncated.png", "bad_crc.png"} <= set(failed)
    assert len(batched) - len(failed) >= 24


def test_any_input_gives_one_result_per_file(frames: list[tuple[str, bytes]], bad_inputs: Path) -> None:
    params = DedupParams()
    assert fingerprint_many([], params) == []
    manifest = json.loads((bad_inputs / "manifest.json").read_text())["files"]
    bad = [(entry["file"], (bad_inputs / entry["file"]).read_bytes()) for entry in manifest
           if not entry["decodable_image"]]
    assert [type(result) for result in fingerprint_many(iter(bad), params)] == [Failure] * len(bad)
    kinds = [(name, bytearray(data)) if place % 2 else (name, memoryview(data))
             for place, (name, data) in enumerate(frames[:6])]
    from_generator = fingerprint_many((item for item in kinds), params)
    for (name, data), result in zip(frames[:6], from_generator, strict=True):
        _equal(result, _reference(name, data, params, False, False))


# each step, and which of an image's arrays it is given: "grey", "pixels" (decoded) or "proof" (its proof image)
_STEPS = {"perceptual_hash": "grey", "prepare": "grey", "foreground": "proof", "layout": "proof",
          "_pixel_digest": "pixels", "preview_jpeg": "grey"}


@pytest.mark.parametrize("step", sorted(_STEPS))
def test_a_step_that_fails_on_one_image_fails_that_image_alone(frames: list[tuple[str, bytes]], step: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two images fail in one batch, in different steps: each fails with its own cause (the later steps leave it
    alone), and every other image gets its fingerprint."""
    params = DedupParams()
    references = {name: _reference(name, data, params, True, False) for name, data in frames}
    arrays = {}
    for name, data in frames:
        image = decode(data, path=name, max_pixels=params.max_pixels)
        arrays[name] = {"grey": image.grey, "pixels": image.pixels, "proof": references[name].proof.pixels}
    other = "layout" if step != "layout" else "perceptual_hash"
    victims = {step: frames[2][0], other: frames[7][0]}  # step -> the image it fails on

    def failing(name: str) -> Callable[..., Any]:
        real = getattr(fingerprints, name)
        marker = arrays[victims[name]][_STEPS[name]]

        def step_function(value: np.ndarray, *args: Any, **kwargs: Any) -> Any:
            if value.shape == marker.shape and np.array_equal(value, marker):
                raise ValueError(f"{name} did not expect this image")
            return real(value, *args, **kwargs)
        return step_function

    for name in victims:
        monkeypatch.setattr(fingerprints, name, failing(name))
    results = fingerprint_many(frames, params, preview=True)
    assert [result.path for result in results] == [name for name, _ in frames]
    causes = {victim: name for name, victim in victims.items()}
    for (name, data), result in zip(frames, results):
        if name not in causes:
            _equal(result, references[name])
            continue
        assert isinstance(result, Failure) and result.status == "error"
        assert result.sha256 == references[name].sha256 and result.size_bytes == len(data)
        assert f"could not be fingerprinted (ValueError: {causes[name]} did not expect this image)" in result.message
        assert "left where it is" in result.message


def test_a_batch_holds_a_bounded_number_of_decoded_pixels(sources: list[tuple[str, Any]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    batches: list[list[tuple[str, int]]] = []
    real = fingerprints._fingerprint_decoded

    def recorded(batch: list, *args: object, **kwargs: object) -> list:
        batches.append([(decoded.path, decoded.image.width * decoded.image.height) for decoded in batch])
        return real(batch, *args, **kwargs)

    budget = 50_000  # a few of these frames (40x40 to 256x256)
    monkeypatch.setattr(fingerprints, "BATCH_PIXELS", budget)
    monkeypatch.setattr(fingerprints, "_fingerprint_decoded", recorded)
    results = fingerprint_many(sources, DedupParams())
    decoded = [result.path for result in results if isinstance(result, Fingerprint)]
    assert [path for batch in batches for path, _ in batch] == decoded  # each once, in order
    assert len(batches) > 3
    # a batch is run as soon as it reaches the budget: below it before its last image
    assert all(sum(pixels for _, pixels in batch[:-1]) < budget for batch in batches)
    assert [result.path for result in results] == [path for path, _ in sources]


def test_a_failed_step_leaves_nothing_of_its_own_behind(frames: list[tuple[str, bytes]],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """What a step had allocated when it failed is freed at once, not held with the failure until the batch ends
    (a MemoryError halfway through a large image would otherwise leave its arrays alive beside the next images)."""
    import weakref

    allocated: list[weakref.ref] = []
    alive_later: list[bool] = []
    real_prepare, real_layout = fingerprints.prepare, fingerprints.layout

    def prepare_that_fails_once(grey: np.ndarray, *args: Any, **kwargs: Any) -> Any:
        if not allocated:
            scratch = np.ones(1_000_000, np.float32)  # the step's own work so far
            allocated.append(weakref.ref(scratch))
            raise MemoryError("out of memory halfway")
        return real_prepare(grey, *args, **kwargs)

    def layout_watching(*args: Any) -> Any:
        alive_later.append(allocated[0]() is not None)
        return real_layout(*args)

    monkeypatch.setattr(fingerprints, "prepare", prepare_that_fails_once)
    monkeypatch.setattr(fingerprints, "layout", layout_watching)
    results = fingerprint_many(frames[:5], DedupParams())
    assert isinstance(results[0], Failure) and "MemoryError: out of memory halfway" in results[0].message
    assert all(isinstance(result, Fingerprint) for result in results[1:])
    assert alive_later == [False] * 4
