"""The label-only mode: a settled run gets its manifest, ``dedup-manifest.json``, and nothing moves.

For labs whose agent uploads the whole drop zone and whose pipeline decides in the data platform: the manifest
(a FolderManifest, see protocol/README.md) lists every input file of the run with its path relative to the run
folder, size and sha256, and triggers the pipeline once the agent has uploaded it. Entries the runner skips
(temporary, system and hidden files, links, the manifest itself) are not listed. The manifest is written to a
temporary name, flushed to disk and renamed into place, so the agent never uploads half of it. A run that receives
late files gets a new manifest (listing the whole run again): the agent uploads a new version of the file and the
pipeline runs again. A copy is kept in the run's records (W/<records>/runs/<run>/manifest.json).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import stat
import time
from pathlib import Path, PurePosixPath
from typing import Sequence

from dedup_engine.errors import DedupError
from dedup_engine.grouping import natural_key
from dedup_engine.models import Counts, FolderManifest, ManifestFile

from .layout import Layout
from .processing import RunFiles, RunReport
from .records import NOT_A_FILE, RunRecords, RunState, atomic_write, runs_with_status
from .runs import RUN_MANIFEST

log = logging.getLogger("local_runner.label_mode")

CHUNK = 1 << 20


class RunChangedError(DedupError):
    """A file changed while the manifest was being written: the run is not settled after all."""


def file_entry(run_dir: Path, path: str, size: int, mtime_ns: int) -> ManifestFile:
    """The manifest entry of one listed file: its sha256, read once; refused if the file is no longer as listed."""
    full = run_dir.joinpath(*PurePosixPath(path).parts)
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
    digest = hashlib.sha256()
    try:
        fd = os.open(full, flags)
    except OSError as exc:
        raise RunChangedError(f"{full} cannot be opened ({exc.strerror or exc}): the run is listed again on the "
                              "next pass") from exc
    with os.fdopen(fd, "rb") as handle:
        before = os.fstat(handle.fileno())
        read = 0
        while block := handle.read(CHUNK):
            digest.update(block)
            read += len(block)
        after = os.fstat(handle.fileno())
    seen = (size, mtime_ns)
    if not stat.S_ISREG(before.st_mode) or {(before.st_size, before.st_mtime_ns), (after.st_size, after.st_mtime_ns),
                                            (read, after.st_mtime_ns)} != {seen}:
        raise RunChangedError(f"{full} changed while the run's manifest was written: the run is written again once "
                              "it has settled")
    return ManifestFile(path=path, size_bytes=size, sha256=digest.hexdigest())


def build_manifest(run: str, run_dir: Path, files: Sequence[tuple[str, int, int]]) -> FolderManifest:
    entries = [file_entry(run_dir, path, size, mtime) for path, size, mtime in
               sorted(files, key=lambda f: natural_key(f[0]))]
    return FolderManifest(run=run, created_at=dt.datetime.now(dt.timezone.utc), files=entries)


class LabelOnlyProcessor:
    """Stands where RunProcessor stands in the Service: one pass over a settled run, here its manifest only."""

    done_status = "label-only"
    dry_run = False
    uploader = None

    def __init__(self, layout: Layout) -> None:
        self.layout = layout

    def records(self, run: str) -> RunRecords:
        return RunRecords(self.layout.records(run))

    def process(self, listing: RunFiles) -> RunReport:
        started = time.perf_counter()
        run = listing.run
        records = self.records(run)
        state = records.read_state()
        if state is not None and state.status == "moving":
            self.finish_interrupted(run)  # raises: the journal's moves come first
        done = state is not None and state.status == self.done_status
        if done and all(state.decided(*f) for f in listing.files) and \
                all(state.decided(p) for p, _ in (*listing.skipped, *listing.errors)):
            log.info("run %s: nothing new since manifest version %d", run, state.passes)  # type: ignore[union-attr]
            return RunReport(run, "unchanged", records=records.folder)
        if not listing.files:
            raise DedupError(f"run {run}: no input file to list in its manifest (only skipped entries)")
        run_dir = self.layout.run_dir(run)
        manifest = build_manifest(run, run_dir, listing.files)
        version = (state.passes if state is not None else 0) + 1
        records.folder.mkdir(parents=True, exist_ok=True)
        data = manifest.model_dump_json(indent=2, exclude_none=True).encode()
        atomic_write(records.manifest_path, data)  # the records' copy, then the one the pipeline is triggered by:
        path = run_dir / RUN_MANIFEST  # each a temporary name, fsync, rename
        atomic_write(path, data)
        left = {path: (size, mtime) for path, size, mtime in listing.files}
        left.update({p: NOT_A_FILE for p, _ in (*listing.skipped, *listing.errors)})
        left[RUN_MANIFEST] = NOT_A_FILE  # its own manifest, there from now on, is nothing new
        counts = Counts(total=len(listing.files) + len(listing.skipped) + len(listing.errors),
                        skipped=len(listing.skipped), error=len(listing.errors))
        records.write_state(RunState(run=run, status="label-only", updated_at=dt.datetime.now(dt.timezone.utc),
                                     passes=version, counts=counts, processed_paths=sorted(left),
                                     left_in_place=left))
        report = RunReport(run, "label-only", records=records.folder, seconds=time.perf_counter() - started)
        log.info("run %s: manifest version %d written to %s: %d files listed, %d skipped entries not listed, "
                 "nothing moved (%.1f s)", run, version, path, len(manifest.files), len(listing.skipped),
                 report.seconds)
        return report

    def fail(self, run: str, error: BaseException) -> None:
        records = self.records(run)
        previous = records.read_state()
        if previous is not None and previous.status == "moving":
            return  # a move-mode pass is unfinished: its state stays for move mode to finish
        records.write_state(RunState(
            run=run, status="failed", updated_at=dt.datetime.now(dt.timezone.utc),
            error=f"{type(error).__name__}: {error}", passes=previous.passes if previous else 0))

    def interrupted_runs(self) -> list[str]:
        return runs_with_status(self.layout.runs_records_root(), "moving")

    def finish_interrupted(self, run: str) -> bool:
        raise DedupError(f"run {run}: a move-mode pass was interrupted during its moves; start the runner once "
                         "without --mode label to finish them")
