"""The pass's thumbnails live in a temporary file: what goes in comes out, and clear() deletes it."""

from __future__ import annotations

import os

import pytest

from local_runner.thumbnails import ThumbnailSpill


def test_thumbnails_come_back_byte_for_byte_and_clear_deletes_the_file() -> None:
    spill = ThumbnailSpill()
    assert len(spill) == 0 and "a.png" not in spill
    jpegs = {f"run/{i}.png": os.urandom(100 + i) for i in range(50)}
    for path, data in jpegs.items():
        spill[path] = data
    spill["run/3.png"] = b"newer"  # a later thumbnail of the same file replaces the earlier one
    jpegs["run/3.png"] = b"newer"
    assert dict(spill) == jpegs and len(spill) == 50
    handle = spill._file
    assert handle is not None and not handle.closed
    spill.clear()
    assert handle.closed and len(spill) == 0 and "run/1.png" not in spill
    spill["x.png"] = b"again"  # usable for the next pass
    assert spill["x.png"] == b"again"
    spill.clear()


def test_writes_after_reads_append_and_every_thumbnail_stays_readable() -> None:
    spill = ThumbnailSpill()
    spill["a.png"] = b"first"
    assert spill["a.png"] == b"first"  # a read moves the file's position to the start
    spill["b.png"] = b"second"  # must still go to the end, not over "first"
    assert spill["b.png"] == b"second" and spill["a.png"] == b"first"
    spill["c.png"] = b"third" * 1000  # larger than what is left of the buffer
    assert dict(spill) == {"a.png": b"first", "b.png": b"second", "c.png": b"third" * 1000}
    spill.clear()


def test_membership_does_not_read_the_thumbnail(monkeypatch: pytest.MonkeyPatch) -> None:
    """``in`` answers from the index (the report asks it of every tile before it reads the thumbnail)."""
    spill = ThumbnailSpill()
    spill["a.png"] = b"first"
    reads: list[str] = []
    original = ThumbnailSpill.__getitem__
    monkeypatch.setattr(ThumbnailSpill, "__getitem__", lambda self, path: reads.append(path) or original(self, path))
    assert "a.png" in spill and "b.png" not in spill and 3 not in spill
    assert reads == []
    assert spill["a.png"] == b"first" and reads == ["a.png"]
    spill.clear()


@pytest.mark.parametrize("pread", [True, False], ids=["pread", "seek"])
def test_reads_and_writes_interleave_with_either_way_of_reading(monkeypatch: pytest.MonkeyPatch, pread: bool) -> None:
    """POSIX reads a thumbnail at its offset (pread), Windows by seeking: both give every thumbnail back while
    more are written between the reads."""
    from local_runner import thumbnails

    if not pread:
        monkeypatch.setattr(thumbnails, "_PREAD", None)
    elif thumbnails._PREAD is None:
        pytest.skip("no os.pread on this system")
    spill = ThumbnailSpill()
    expected = {}
    for i in range(300):
        data = os.urandom(1 + (i * 37) % 9000)
        spill[f"{i}.png"] = expected[f"{i}.png"] = data
        if i % 7 == 0:
            for j in range(0, i + 1, 11):
                assert spill[f"{j}.png"] == expected[f"{j}.png"]
    assert dict(spill) == expected
    spill.clear()


def test_a_saved_spill_loads_in_another_process_as_it_was(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``save`` writes every thumbnail and its index to one file (after reads moved the position, with writes still
    buffered); ``ThumbnailBlob.load`` gives the same mapping back; an empty spill saves an empty one."""
    import multiprocessing

    from local_runner.thumbnails import ThumbnailBlob

    spill = ThumbnailSpill()
    empty = tmp_path / "empty.tmp"
    spill.save(empty)
    assert dict(ThumbnailBlob.load(empty)) == {}
    expected = {}
    for i in range(500):
        spill[f"run/{i}.png"] = expected[f"run/{i}.png"] = os.urandom(1 + (i * 53) % 4000)
        if i % 97 == 0:
            assert spill[f"run/{i // 2}.png"] == expected[f"run/{i // 2}.png"]
    saved = tmp_path / "thumbnails.tmp"
    spill.save(saved)
    spill["after.png"] = expected["after.png"] = b"written after the save"  # the spill goes on as before
    assert dict(spill) == expected
    blob = ThumbnailBlob.load(saved)
    assert len(blob) == 500 and "after.png" not in blob and "run/7.png" in blob
    assert dict(blob) == {k: v for k, v in expected.items() if k != "after.png"}
    with multiprocessing.get_context("spawn").Pool(1) as pool:  # another interpreter reads the same file
        assert pool.apply(_load_dict, (saved,)) == dict(blob)
    spill.clear()


def _load_dict(path):  # type: ignore[no-untyped-def]
    from local_runner.thumbnails import ThumbnailBlob

    return dict(ThumbnailBlob.load(path))
