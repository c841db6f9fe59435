"""A fingerprint sent from a worker arrives whole, and a copy with changes is the copy dataclasses would make: every field equal, every array of its type and shape, each
array holding only its own bytes."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import numpy as np
import pytest

from dedup_engine.fingerprints import Fingerprint, fingerprint
from dedup_engine.models import DedupParams
from dedup_engine.proof import Envelope, ProofImage


def _equal(a: object, b: object) -> None:
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, (Fingerprint, ProofImage, Envelope)):
        for name in type(a).__slots__:
            _equal(getattr(a, name), getattr(b, name))
    else:
        assert a == b


def _arrays(obj: object) -> list[np.ndarray]:
    found: list[np.ndarray] = []
    for name in type(obj).__slots__:
        value = getattr(obj, name)
        if isinstance(value, np.ndarray):
            found.append(value)
        elif isinstance(value, (ProofImage, Envelope)):
            found += _arrays(value)
    return found


@pytest.mark.parametrize("method", ["hash", "mse"])
@pytest.mark.parametrize("pack", [False, True])
def test_a_fingerprint_survives_pickling_as_a_worker_sends_it(engine_data: Path, method: str, pack: bool) -> None:
    files = sorted(p for p in engine_data.rglob("*") if p.suffix.lower() in {".png", ".bmp"})[:4]
    assert files
    params = DedupParams(method=method)
    for path in files:
        original = fingerprint(path.name, path.read_bytes(), params, preview=True, pack=pack)
        assert isinstance(original, Fingerprint)
        arrays = _arrays(original)
        assert arrays, "a fingerprint carries arrays"
        copy = pickle.loads(ForkingPickler.dumps(original))
        _equal(original, copy)
        for array in _arrays(copy):
            # each array is a view of a bytes object of its own size: a kept array holds no other's memory
            owner = array.base
            while isinstance(owner, np.ndarray):
                owner = owner.base
            assert isinstance(owner, bytes) and len(owner) == array.nbytes
            assert not array.flags.writeable


def test_a_kept_proof_image_and_an_empty_envelope_survive_pickling() -> None:
    pixels = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) % 251).astype(np.uint8)
    from dedup_engine.proof import prepare

    image = prepare(pixels, 4)
    kept = image.as_kept()  # packed pixels (bytes), envelope without block means (None)
    _equal(kept, pickle.loads(pickle.dumps(kept)))
    tiny = prepare(pixels[:8, :8], 4)  # too small for an envelope: None
    assert tiny.envelope is None
    _equal(tiny, pickle.loads(pickle.dumps(tiny)))


def test_replaced_copies_as_dataclasses_replace_does(engine_data: Path) -> None:
    import dataclasses

    from dedup_engine.slotted import replaced

    path = sorted(p for p in engine_data.rglob("*") if p.suffix.lower() == ".png")[0]
    original = fingerprint(path.name, path.read_bytes(), DedupParams())
    assert isinstance(original, Fingerprint) and original.proof is not None
    changes = {"proof": None, "signature": None, "centred_signature": None}
    ours, theirs = replaced(original, **changes), dataclasses.replace(original, **changes)
    _equal(ours, theirs)
    assert ours is not original and original.proof is not None  # the original is left as it was
    assert ours.pixel_digest is original.pixel_digest  # the other fields are shared, as dataclasses shares them
    with pytest.raises(TypeError, match="no field 'colour'"):
        replaced(original, colour=1)
