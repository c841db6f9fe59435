"""One pass over one settled run: manifest, the task function (the pipeline's own code), moves, upload, records.

Order matters for safety: the decision (result.json with every file's planned destination) is written before any
move; the journal records each planned move before it happens; the run is marked processed only after its moves
are done. A crash anywhere is finished by the next pass, which first recovers the journal.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from dedup_engine.errors import DedupError
from dedup_engine.grouping import natural_key
from dedup_engine.models import DedupParams, DedupResult, FileOutcome, FolderManifest, ManifestFile

from .fs_context import FileSystemContext
from .layout import Layout
from .records import RunRecords, RunState, UploadSummary
from .task_host import TaskFunction, load_task_function

log = logging.getLogger("local_runner.processing")

Progress = Callable[[int, "int | None"], None]


@dataclass(frozen=True)
class RunFiles:
    """What the watcher found in a run: regular files, and entries it will not touch (symlinks, specials)."""

    run: str
    files: Sequence[tuple[str, int, int]]  # (run-relative path, size, mtime_ns)
    refused: Sequence[tuple[str, str]] = ()  # (run-relative path, why)


@dataclass
class RunReport:
    run: str
    status: str
    result: DedupResult | None = None
    moved: int = 0
    move_errors: list[str] = field(default_factory=list)
    upload: UploadSummary | None = None
    seconds: float = 0.0
    records: Path | None = None


class RunProcessor:
    def __init__(
        self,
        layout: Layout,
        params: DedupParams,
        *,
        workers: int | None = None,
        dry_run: bool = False,
        uploader: Any = None,
        task: TaskFunction | None = None,
        progress: Callable[[str, int | None], Progress] | None = None,
        reporter: Callable[[Path, DedupResult, Layout], Path] | None = None,
    ) -> None:
        self.layout = layout
        self.params = params
        self.workers = workers
        self.dry_run = dry_run
        self.uploader = uploader
        self.task = task or load_task_function()
        self.progress = progress
        self.reporter = reporter

    def records(self, run: str) -> RunRecords:
        return RunRecords(self.layout.records(run))

    def process(self, listing: RunFiles) -> RunReport:
        started = time.perf_counter()
        run = listing.run
        records = self.records(run)
        records.folder.mkdir(parents=True, exist_ok=True)
        state = records.read_state()
        previous = records.read_result() if state and state.status == "processed" else None
        if not self.dry_run:
            self._recover(run, records)
        done = set(state.processed_paths) if state and state.status == "processed" else set()
        fresh = [f for f in listing.files if f[0] not in done]
        refused = [r for r in listing.refused if r[0] not in done]
        if not fresh and not refused:
            report = RunReport(run, "unchanged", previous, seconds=0.0, records=records.folder)
            if state and previous and self.uploader is not None and (state.upload is None or state.upload.failed):
                log.info("run %s: retrying the upload left unfinished by an earlier pass", run)
                report.upload = self._upload(run, records, previous)
                records.write_state(state.model_copy(update={"upload": report.upload, "updated_at": _now()}))
            else:
                log.info("run %s: nothing new (%d files already processed)", run, len(done))
            report.seconds = time.perf_counter() - started
            return report
        manifest = self._manifest(run, fresh, previous)
        records.write_json(records.manifest_path, manifest.model_dump(mode="json"))
        log.info("run %s: deduplicating %d files%s", run, len(fresh),
                 f" against {len(manifest.kept)} kept images" if manifest.kept else "")
        result = self._decide(run, records, manifest)
        result = self._with_refused(result, refused)
        result = result.model_copy(update={"files": [self._planned(run, o) for o in result.files]})
        number = (state.passes if state and state.status == "processed" else 0) + 1
        records.write_pass(result, number)
        combined = _merge(previous, result) if previous else result
        records.write_result(combined)
        report = RunReport(run, "dry-run" if self.dry_run else "processed", combined, records=records.folder)
        if self.dry_run:
            records.write_state(self._state(run, "dry-run", combined, number, state))
            log.info("run %s: dry run, nothing moved; plan in %s", run, records.result_path)
        else:
            final = self._move(run, records, result, report)
            combined = _merge(previous, final) if previous else final
            records.write_result(combined)
            report.result = combined
            if self.uploader is not None:
                report.upload = self._upload(run, records, combined)
            records.write_state(self._state(run, "processed", combined, number, state, report.upload))
        if self.reporter is not None:
            try:
                path = self.reporter(records.folder, combined, self.layout)
                log.info("run %s: report %s", run, path)
            except (OSError, ValueError) as exc:  # a report is a convenience: never fail a run for it
                log.warning("run %s: report not written: %s", run, exc)
        report.seconds = time.perf_counter() - started
        c = combined.counts
        log.info("run %s: %d files: %d unique, %d duplicates archived, %d errors, %d passed through (%.1f s)",
                 run, c.total, c.unique, c.duplicate, c.error, c.passthrough, report.seconds)
        return report

    def fail(self, run: str, error: BaseException) -> None:
        """Record a failed run so that ``status`` shows it; its files were not moved."""
        records = self.records(run)
        previous = records.read_state()
        records.write_state(RunState(
            run=run, status="failed", updated_at=_now(), error=f"{type(error).__name__}: {error}",
            passes=previous.passes if previous else 0,
            processed_paths=previous.processed_paths if previous else [],
        ))

    # --- steps -------------------------------------------------------------------------------------------------

    def _manifest(self, run: str, files: Sequence[tuple[str, int, int]], previous: DedupResult | None) -> FolderManifest:
        ctx_pointer = FileSystemContext(self.layout.root).pointer
        run_prefix = PurePosixPath(run)
        entries = [
            ManifestFile(path=path, size_bytes=size, mtime_ns=mtime, file=ctx_pointer(str(run_prefix / path)))
            for path, size, mtime in files
        ]
        kept = []
        if previous is not None:
            for outcome in previous.files:
                if outcome.status == "unique" and outcome.destination and outcome.width is not None:
                    if self.layout.absolute(outcome.destination).is_file():
                        kept.append(ManifestFile(path=outcome.path, file=ctx_pointer(outcome.destination)))
        return FolderManifest(run=run, created_at=_now(), files=entries, kept=kept)

    def _decide(self, run: str, records: RunRecords, manifest: FolderManifest) -> DedupResult:
        context = FileSystemContext(
            self.layout.root,
            workers=self.workers,
            progress=self.progress(run, len(manifest.files)) if self.progress else None,
        )
        pointer = context.pointer(self.layout.relative(records.manifest_path))
        overrides = self.params.model_dump(include={"method", "hash_algorithm", "hash_size", "max_distance",
                                                     "max_mse", "max_residual", "max_shift_px", "keep", "max_pixels"})
        self.task({"manifest": pointer, **overrides}, context)
        written = [w for w in context.written.values() if w.file_category == "PROCESSED"]
        if len(written) != 1:
            raise DedupError(f"run {run}: the task function wrote {len(written)} results instead of one")
        return DedupResult.model_validate_json(written[0].content)

    def _with_refused(self, result: DedupResult, refused: Sequence[tuple[str, str]]) -> DedupResult:
        if not refused:
            return result
        extra = [FileOutcome(path=path, status="error", error=why) for path, why in refused]
        files = sorted([*result.files, *extra], key=lambda o: natural_key(o.path))
        counts = result.counts.model_copy(update={"total": result.counts.total + len(extra),
                                                  "error": result.counts.error + len(extra)})
        return result.model_copy(update={"files": files, "counts": counts})

    def _planned(self, run: str, outcome: FileOutcome) -> FileOutcome:
        if outcome.sha256 is None:  # unreadable or refused: it stays where it is
            return outcome.model_copy(update={"destination": None})
        return outcome.model_copy(update={"destination": self.layout.destination(run, outcome)})

    def _recover(self, run: str, records: RunRecords) -> None:
        if not records.journal_path.exists():
            return
        from .journal import Journal
        from .mover import Mover

        outcomes = Mover(self.layout.root, Journal(records.journal_path)).recover()
        if outcomes:
            log.warning("run %s: finished %d moves left by an interrupted pass", run, len(outcomes))

    def _move(self, run: str, records: RunRecords, result: DedupResult, report: RunReport) -> DedupResult:
        from .journal import Journal
        from .mover import Mover

        mover = Mover(self.layout.root, Journal(records.journal_path))
        run_dir = self.layout.run_dir(run)
        planned = [o for o in result.files if o.destination]
        moves = [(run_dir / Path(*PurePosixPath(o.path).parts), self.layout.absolute(o.destination), o.sha256)
                 for o in planned]
        outcomes = mover.move_all(moves)
        final: dict[str, FileOutcome] = {}
        for outcome, moved in zip(planned, outcomes):
            if moved.ok:
                report.moved += 1
                final[outcome.path] = outcome.model_copy(update={"destination": self.layout.relative(Path(moved.dst))})
            else:
                report.move_errors.append(f"{outcome.path}: {moved.error}")
                log.error("run %s: %s not moved: %s", run, outcome.path, moved.error)
                final[outcome.path] = outcome.model_copy(update={"destination": None, "error": moved.error})
        mover.prune_empty_dirs(run_dir)
        if report.move_errors:
            raise DedupError(f"run {run}: {len(report.move_errors)} files could not be moved; see the log")
        return result.model_copy(update={"files": [final.get(o.path, o) for o in result.files]})

    def _upload(self, run: str, records: RunRecords, result: DedupResult) -> UploadSummary:
        from .uploader import UploadItem

        items = [
            UploadItem(self.layout.absolute(o.destination), o.path, o.sha256)
            for o in result.files
            if o.status != "duplicate" and o.destination and o.sha256
        ]
        upload = self.uploader.upload_run(run, items)
        self.uploader.upload_result(run, records.result_path)
        summary = UploadSummary(
            destination=str(getattr(self.uploader, "describe", lambda: "s3")()),
            uploaded=upload.uploaded, skipped=upload.skipped, failed=len(upload.failed),
            failures=[str(f) for f in upload.failed][:50],
        )
        if upload.failed:
            log.error("run %s: %d uploads failed; they are retried on the next pass", run, len(upload.failed))
        return summary

    def _state(self, run: str, status: str, result: DedupResult, passes: int, previous: RunState | None,
               upload: UploadSummary | None = None) -> RunState:
        paths = sorted({o.path for o in result.files})
        return RunState(run=run, status=status, updated_at=_now(), passes=passes, counts=result.counts,  # type: ignore[arg-type]
                        processed_paths=paths if status == "processed" else [], upload=upload,
                        restored=previous.restored if previous else [])


def _merge(previous: DedupResult, current: DedupResult) -> DedupResult:
    """The run's whole result after a later pass: earlier outcomes stay, new files are added."""
    files = {o.path: o for o in previous.files}
    files.update({o.path: o for o in current.files})
    outcomes = sorted(files.values(), key=lambda o: natural_key(o.path))
    counts = previous.counts.model_copy(update={"total": 0, "unique": 0, "duplicate": 0, "error": 0, "passthrough": 0})
    for outcome in outcomes:
        setattr(counts, "total", counts.total + 1)
        setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)
    return current.model_copy(update={"files": outcomes, "counts": counts, "started_at": previous.started_at})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
