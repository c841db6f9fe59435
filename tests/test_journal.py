from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_engine.errors import JournalError
from local_runner.journal import Journal, PlannedMove


def _plan(journal: Journal, n: int) -> None:
    journal.append_plan([PlannedMove(i, f"run/{i}.png", f"unique/run/{i}.png", "ab" * 32, 10) for i in range(1, n + 1)])


def test_pending_and_done(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 3)
    journal.mark_done(2, "unique/run/2.png")
    journal.mark_failed(3, "changed")
    state = journal.state()
    assert [m.id for m in state.pending()] == [1]
    assert state.done == {2: "unique/run/2.png"} and state.failed == {3: "changed"}
    assert journal.next_id() == 4


def test_a_torn_last_line_is_ignored_and_cut_before_the_next_record(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 2)
    with open(journal.path, "ab") as handle:
        handle.write(b'{"op":"done","id":1,"ds')  # killed mid-write
    assert [m.id for m in journal.state().pending()] == [1, 2]
    journal.mark_done(1, "unique/run/1.png")
    lines = journal.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])  # the torn record is gone
    assert [m.id for m in journal.state().pending()] == [2]


def test_damage_in_the_middle_is_an_error_naming_the_line(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 2)
    lines = journal.path.read_bytes().split(b"\n")
    lines[0] = b"garbage"
    journal.path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError, match="line 1"):
        journal.state()


def test_target_overrides_the_planned_destination(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 1)
    journal.mark_target(1, "unique/run/1 (1).png")
    assert journal.state().destination(1) == "unique/run/1 (1).png"


def test_appends_in_a_block_share_one_handle_and_lose_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In ``appending``, the file is opened once (a record torn by an earlier kill cut off then), every record is in
    the file as soon as it is appended (a kill loses none), and the handle is closed at the end."""
    import builtins

    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 3)
    with open(journal.path, "ab") as handle:
        handle.write(b'{"op":"done","id":1,"ds')  # killed mid-write
    opened: list[str] = []
    real_open = builtins.open

    def counting_open(file, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(journal.path) and "a" in mode:
            opened.append(mode)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", counting_open)
    with journal.appending():
        journal.mark_done(1, "unique/run/1.png")
        assert Journal(journal.path).state().done == {1: "unique/run/1.png"}  # readable at once, torn record gone
        journal.mark_failed(2, "changed")
        journal.mark_target(3, "unique/run/3 (1).png")
        assert Journal(journal.path).state().failed == {2: "changed"}
    assert len(opened) == 1
    journal.mark_done(3, "unique/run/3 (1).png")  # after the block: opened again, as before
    assert len(opened) == 2
    lines = journal.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert journal.state().pending() == [] and journal.state().destination(3) == "unique/run/3 (1).png"
