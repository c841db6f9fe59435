from __future__ import annotations

import json
from pathlib import Path

import pytest

from dedup_engine.errors import JournalError
from local_runner.journal import Journal, PlannedMove


def _plan(journal: Journal, n: int) -> None:
    journal.append_plan([PlannedMove(i, f"run/{i}.png", f"unique/run/{i}.png", "ab" * 32, 10) for i in range(1, n + 1)])


def test_records_are_the_json_the_journal_has_always_written(tmp_path: Path) -> None:
    """Records are written from templates: each line is what json.dumps(record, separators=(",", ":")) gives,
    names with quotes, backslashes, newlines and non-ASCII letters included."""
    journal = Journal(tmp_path / "j.jsonl")
    name = 'run/ünï "q" \\ b\n\u2603.png'
    moves = [PlannedMove(1, name, "unique/" + name, "ab" * 32, 10, 1796621930540034738),
             PlannedMove(2, "run/b.png", "archive/run/b.png", "cd" * 32, 0, None)]
    journal.append_plan(moves)
    journal.mark_target(1, "unique/run/x (1).png")
    journal.mark_done(1, "unique/" + name)
    journal.mark_failed(2, 'gone "now"')
    expected = [{"op": "plan", "id": m.id, "src": m.src, "dst": m.dst, "sha256": m.sha256, "size": m.size_bytes,
                 "mtime_ns": m.mtime_ns} for m in moves]
    expected += [{"op": "target", "id": 1, "dst": "unique/run/x (1).png"}, {"op": "done", "id": 1, "dst": "unique/" + name},
                 {"op": "failed", "id": 2, "error": 'gone "now"'}]
    assert journal.path.read_text() == "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in expected)


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
    """In ``appending``, the file is opened once (a record torn by an earlier kill cut off then), a failed move's or
    a new target's record is in the file as soon as it is appended, a finished move's once the block ends (or this
    journal reads itself: a kill may lose those, see test_mover), and the handle is closed at the end."""
    import builtins

    journal = Journal(tmp_path / "j.jsonl")
    _plan(journal, 4)
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
        journal.mark_failed(2, "changed")
        assert Journal(journal.path).state().failed == {2: "changed"}  # readable at once, the torn record gone
        journal.mark_done(1, "unique/run/1.png")
        assert Journal(journal.path).state().done == {}  # in the handle's buffer
        journal.mark_target(4, "unique/run/4 (1).png")  # written at once, the buffered record before it
        assert Journal(journal.path).state().done == {1: "unique/run/1.png"}
        journal.mark_done(3, "unique/run/3.png")
        assert journal.state().done == {1: "unique/run/1.png", 3: "unique/run/3.png"}  # its own reads flush it
        journal.mark_done(4, "unique/run/4 (1).png")
    assert len(opened) == 1
    assert Journal(journal.path).state().done == {1: "unique/run/1.png", 3: "unique/run/3.png",
                                                  4: "unique/run/4 (1).png"}  # all of them once the block ends
    journal.mark_done(3, "unique/run/3 (1).png")  # after the block: opened again, as before
    assert len(opened) == 2
    lines = journal.path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(json.loads(line) for line in lines[:-1])
    assert journal.state().pending() == [] and journal.state().destination(4) == "unique/run/4 (1).png"
