"""A run's records in W/.dedup/runs/<run>/: result.json, manifest.json, state.json, passes/. Written atomically.

``state.json`` says where the run stands (processed, dry-run, failed; label-only: its manifest was written) so the watcher, ``status`` and ``restore``
agree on it; ``result.json`` is the run's whole decision with each file's destination; ``passes/`` keeps the
result of each pass (a run that receives late files is processed again, against its kept images).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from dedup_engine.models import RESULT_SCHEMA_VERSION, Counts, DedupResult

log = logging.getLogger("local_runner.records")

RunStatus = Literal["processed", "dry-run", "failed", "moving", "label-only"]
DONE_STATUSES = ("processed", "label-only")  # a pass of either mode that completed


class UploadSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")
    destination: str
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[str] = Field(default_factory=list)


NOT_A_FILE = (-1, -1)  # left_in_place's mark for an entry decided whatever its size (see RunState)


class RunState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    run: str
    status: RunStatus
    updated_at: dt.datetime
    passes: int = 0
    counts: Counts = Field(default_factory=Counts)
    processed_paths: list[str] = Field(default_factory=list, description="run-relative paths already decided")
    error: str | None = None
    journal_from: int | None = Field(default=None, description="first journal id of the pass being moved")
    upload: UploadSummary | None = None
    restored: list[str] = Field(default_factory=list)
    left_in_place: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description="files left in the run folder on purpose (errors, skipped entries, restored files; in label-only "
        "mode every file its manifest lists): their "
        "(size, mtime_ns) when decided, (-1, -1) for entries that are not regular files; a change decides them again")

    def decided(self, path: str, size: int | None = None, mtime_ns: int | None = None) -> bool:
        """Is this file, found in the run folder, already decided? Decided files leave the folder; only the ones left
        there on purpose (errors, skipped entries, restored files) are decided, and only while they do not change
        (a truncated file that the instrument completes later is decided again). Anything else found at a path that
        was processed before is a new file under an old name, and is decided like any other."""
        if self.status not in DONE_STATUSES:
            return False
        seen = self.left_in_place.get(path)
        if seen is None:
            return False
        return size is None or (size, mtime_ns) == tuple(seen)


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary name beside ``path``, flush to disk, then rename over it: never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if os.name != "nt":
            os.fchmod(fd, 0o644)  # readable like any file we write (mkstemp makes it owner-only)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


class RunRecords:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def result_path(self) -> Path:
        return self.folder / "result.json"

    @property
    def manifest_path(self) -> Path:
        return self.folder / "manifest.json"

    @property
    def state_path(self) -> Path:
        return self.folder / "state.json"

    @property
    def journal_path(self) -> Path:
        return self.folder / "journal.jsonl"

    @property
    def report_path(self) -> Path:
        return self.folder / "report.html"

    def read_state(self) -> RunState | None:
        try:
            return RunState.model_validate_json(self.state_path.read_bytes())
        except FileNotFoundError:
            return None

    def write_state(self, state: RunState) -> None:
        atomic_write(self.state_path, state.model_dump_json(indent=2).encode())

    def read_result(self) -> DedupResult | None:
        try:
            return load_result(self.result_path.read_bytes())
        except FileNotFoundError:
            return None

    def write_result(self, result: DedupResult | bytes) -> None:
        """The run's result (or its JSON, already serialised)."""
        atomic_write(self.result_path, _json(result))

    def result_from_pass(self, pass_path: Path, data: bytes) -> None:
        """The run's result as the pass just written at ``pass_path`` (``data``, its bytes): a hard link to that file
        renamed over the result, instead of the same bytes written and flushed again (0.11 s for the 29 MB of a
        40,000-file run); written where the file system has no hard links. Both names are only ever replaced by a
        rename, never written in place, so sharing the file changes neither."""
        temp = self.result_path.with_name(f".{self.result_path.name}.{os.getpid()}.link.tmp")
        try:
            temp.unlink(missing_ok=True)
            os.link(pass_path, temp)
            os.replace(temp, self.result_path)
        except OSError:
            temp.unlink(missing_ok=True)
            self.write_result(data)

    def read_pass(self, number: int) -> DedupResult:
        return load_result((self.folder / "passes" / f"{number:04d}.json").read_bytes())

    def write_pass(self, result: DedupResult | bytes, number: int) -> Path:
        """One pass's result (or its JSON, already serialised)."""
        path = self.folder / "passes" / f"{number:04d}.json"
        atomic_write(path, _json(result))
        return path

    def write_model(self, path: Path, model: BaseModel) -> None:
        atomic_write(path, _json(model))


def _json(model: BaseModel | bytes) -> bytes:
    """A model as indented JSON (pydantic's own serialiser: the standard library's takes a second per 10,000
    manifest entries), or JSON already serialised, as it is."""
    return model if isinstance(model, bytes) else model.model_dump_json(indent=2).encode()


def load_result(data: bytes) -> DedupResult:
    """A result as written by this version or an earlier one: version 1 is version 2 without the statuses
    ``skipped`` and ``restored``, so it reads as it is (records of a W processed before an upgrade)."""
    payload = json.loads(data)
    if isinstance(payload, dict) and payload.get("schema_version") == 1:
        payload["schema_version"] = RESULT_SCHEMA_VERSION
    return DedupResult.model_validate(payload)


def runs_with_status(records_root: Path, status: str) -> list[str]:
    """The names of the recorded runs in ``status`` (e.g. "moving": a pass cut short during its moves)."""
    return [state.run for _, state in recorded_runs(records_root) if state.status == status]


def recorded_runs(records_root: Path) -> Iterator[tuple[RunRecords, RunState]]:
    """Every run with records under ``records_root`` (W/.dedup/runs), in path order, with its state; a state file
    that cannot be read is skipped with a warning naming it."""
    for state_file in sorted(records_root.rglob("state.json")) if records_root.is_dir() else []:
        records = RunRecords(state_file.parent)
        try:
            state = records.read_state()
        except ValueError as exc:
            log.warning("%s cannot be read (%s): that run is left out; move the file away to start the run afresh",
                        state_file, exc)
            continue
        if state is not None:
            yield records, state
