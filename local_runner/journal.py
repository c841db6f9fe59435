"""The move journal: an append-only JSON-lines file, written and flushed to disk before the moves it describes.

Records (one JSON object a line; paths relative to the watched folder, "/" separators):
    {"op": "plan", "id": 3, "src": "run-1/a.png", "dst": "unique/run-1/a.png", "sha256": "...", "size": 123,
     "mtime_ns": 1700000000000000000}
    {"op": "target", "id": 3, "dst": "unique/run-1/a (1).png"}   the destination was taken: a new name, before moving
    {"op": "done", "id": 3, "dst": "unique/run-1/a (1).png"}
    {"op": "failed", "id": 3, "error": "..."}                     refused (changed or missing source): left in place
A kill while a line is written leaves a torn last line: it is ignored, and cut off before the next append. A torn
line anywhere else means the file was damaged: JournalError, naming the journal and the line.
"""

from __future__ import annotations

import contextlib
import json
import os
from json.encoder import encode_basestring_ascii
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

from dedup_engine.errors import JournalError


@dataclass(frozen=True)
class PlannedMove:
    id: int
    src: str
    dst: str
    sha256: str
    size_bytes: int
    mtime_ns: int | None = None


@dataclass(frozen=True)
class JournalState:
    planned: dict[int, PlannedMove]
    targets: dict[int, str]
    done: dict[int, str]
    failed: dict[int, str]

    def pending(self) -> list[PlannedMove]:
        return [m for i, m in sorted(self.planned.items()) if i not in self.done and i not in self.failed]

    def destination(self, move_id: int) -> str:
        return self.targets.get(move_id, self.planned[move_id].dst)


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._appending = False
        self._held: BinaryIO | None = None  # the handle of ``appending``, while it lasts

    @contextlib.contextmanager
    def appending(self) -> Iterator[None]:
        """Appends in this block go through one handle, opened (and a torn last record cut off) at the first and
        closed at the end, every record flushed to disk then: for a batch of moves by this process, the journal's
        one writer (reopening the file and checking its last byte for each record cost 42 us of a move's 100)."""
        self._appending = True
        try:
            yield
        finally:
            self._appending = False
            held, self._held = self._held, None
            if held is not None:
                try:
                    held.flush()  # the records of finished moves, held in its buffer (see mark_done)
                    os.fsync(held.fileno())
                finally:
                    held.close()

    def entries(self) -> Iterator[dict]:
        if self._held is not None:
            self._held.flush()  # this process's own records so far, the buffered ones too
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as exc:
                if number == len(complete) and not tail:
                    return  # the last record, damaged by a crash during its write: it never happened
                raise JournalError(
                    f"journal {self.path} is damaged at line {number}: {exc}; keep the file and contact support, "
                    "the files themselves are where the journal's earlier lines say"
                ) from exc
        # ``tail`` has no newline: a record torn by a kill mid-write; it never happened

    def state(self) -> JournalState:
        planned: dict[int, PlannedMove] = {}
        targets: dict[int, str] = {}
        done: dict[int, str] = {}
        failed: dict[int, str] = {}
        for entry in self.entries():
            op, move_id = entry.get("op"), entry.get("id")
            if op == "plan":
                planned[move_id] = PlannedMove(move_id, entry["src"], entry["dst"], entry["sha256"],
                                               entry["size"], entry.get("mtime_ns"))
            elif op == "target":
                targets[move_id] = entry["dst"]
            elif op == "done":
                done[move_id] = entry["dst"]
            elif op == "failed":
                failed[move_id] = entry["error"]
        return JournalState(planned, targets, done, failed)

    def next_id(self) -> int:
        return max(self.state().planned, default=0) + 1

    def append_plan(self, moves: Iterable[PlannedMove]) -> None:
        self._append([_PLAN % (m.id, _text(m.src), _text(m.dst), _text(m.sha256), m.size_bytes,
                               "null" if m.mtime_ns is None else m.mtime_ns) for m in moves])

    def mark_target(self, move_id: int, dst: str) -> None:
        self._append([_TARGET % (move_id, _text(dst))])

    def mark_done(self, move_id: int, dst: str) -> None:
        # neither flushed to disk nor handed to the OS one by one (within ``appending``, the handle's buffer takes
        # them, written when it fills and at the end; two system calls a move cost 10 % of it): a move whose record
        # is lost to a kill is recognised as done by recovery, and a record torn by one is cut off
        self._append([_DONE % (move_id, _text(dst))], durable=False, buffered=True)

    def mark_failed(self, move_id: int, error: str) -> None:
        self._append([_FAILED % (move_id, _text(error))], durable=False)

    def _append(self, records: list[str], *, durable: bool = True, buffered: bool = False) -> None:
        if not records:
            return
        data = "".join(records).encode()
        if self._held is not None:
            self._held.write(data)
            if buffered:
                return
            self._held.flush()  # in the OS at once, as below: a kill from here on loses nothing
            if durable:
                os.fsync(self._held.fileno())
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        with contextlib.ExitStack() as stack:
            handle = open(self.path, "ab+")
            if self._appending:
                self._held = handle  # kept open by ``appending``, which closes it
            else:
                stack.callback(handle.close)
            size = handle.seek(0, os.SEEK_END)
            if size:
                handle.seek(size - 1)
                if handle.read(1) != b"\n":  # cut off a record torn by an earlier kill
                    handle.seek(0)
                    content = handle.read()
                    handle.truncate(content.rfind(b"\n") + 1)
                    handle.seek(0, os.SEEK_END)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if created:
            fsync_dir(self.path.parent)


# Each record as json.dumps(record, separators=(",", ":")) writes it, byte for byte, from a template and the C
# string encoder (a dict encoded by json's encoder cost 4 us a record, two records a move)
_text = encode_basestring_ascii
_PLAN = '{"op":"plan","id":%d,"src":%s,"dst":%s,"sha256":%s,"size":%d,"mtime_ns":%s}\n'
_TARGET = '{"op":"target","id":%d,"dst":%s}\n'
_DONE = '{"op":"done","id":%d,"dst":%s}\n'
_FAILED = '{"op":"failed","id":%d,"error":%s}\n'


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a create or rename) durable; not possible, nor needed, on Windows."""
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
