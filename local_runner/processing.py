"""One pass over one settled run: manifest, the task function (the pipeline's own code), moves, upload, records.

Order matters for safety: the decision (result.json with every file's planned destination) is written before any
move; the journal records each planned move before it happens; the run is marked processed only after its moves
are done. A crash anywhere is finished by the next pass, which first recovers the journal.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Sequence

from pydantic_core import to_json

from dedup_engine import __version__
from dedup_engine.errors import DedupError
from dedup_engine.grouping import natural_key
from dedup_engine.models import (Counts, DedupParams, DedupResult, FileOutcome, FolderManifest,
                                  ManifestFile)

from .agent_result import agent_result_path, leave_result
from .fs_context import FileSystemContext
from .layout import Layout, posix_join
from .records import NOT_A_FILE, RunRecords, RunState, UploadSummary, atomic_write, runs_with_status
from .task_host import TaskFunction, load_task_function
from .thumbnails import ThumbnailSpill

log = logging.getLogger("local_runner.processing")

Progress = Callable[[int, "int | None"], None]


DRY_RUN_PLAN = "dry-run.json"  # a dry run's plan for a run that already has records of its own
REPORT_APART_FROM = 10_000  # files in a full pass from which its report is written by another process during the
# moves (at 40,000 files the report's 0.3 s otherwise followed them on one core, the other one idle; below, starting
# a process costs more than it saves, and on Windows it is a new interpreter)
REPORT_THUMBNAILS = ".report-thumbnails.tmp"  # in the run's records: the thumbnails, for that process to read
REPORT_APART_WAIT = 600.0  # seconds that process is given after the moves (a 40,000-file report takes under one)


@dataclass(frozen=True)
class RunFiles:
    """What the watcher found in a run: input files, entries it skips (links, specials, temporary, system and hidden
    files) and sub-folders it could not list."""

    run: str
    files: Sequence[tuple[str, int, int]]  # (run-relative path, size, mtime_ns)
    skipped: Sequence[tuple[str, str]] = ()  # (run-relative path, why)
    errors: Sequence[tuple[str, str]] = ()  # (run-relative path, why)


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
    done_status = "processed"  # the state of a run whose pass completed (label_mode.py's processor: label-only)
    report_apart_from: int | None = REPORT_APART_FROM  # files in a full pass from which another process writes its
    # report (None: never)

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
        reporter: Callable[..., Path] | None = None,  # (folder, result, layout, previews=...) -> report path
        result_to_agent: bool = False,
    ) -> None:
        self.result_to_agent = result_to_agent
        self.layout = layout
        self.params = params
        self.workers = workers
        self.dry_run = dry_run
        self.uploader = uploader
        self.task = task or load_task_function()
        self.progress = progress
        self.reporter = reporter
        self.previews = ThumbnailSpill()  # this pass's thumbnails (path -> JPEG), for the reporter, on disk

    def records(self, run: str) -> RunRecords:
        return RunRecords(self.layout.records(run))

    def process(self, listing: RunFiles) -> RunReport:
        started = time.perf_counter()
        run = listing.run
        self.previews.clear()
        records = self.records(run)
        records.folder.mkdir(parents=True, exist_ok=True)
        (records.folder / REPORT_THUMBNAILS).unlink(missing_ok=True)  # left by a pass killed while its report was made
        if not self.dry_run:
            self.finish_interrupted(run)
        state = records.read_state()
        previous = records.read_result() if state and state.status == "processed" else None
        decided = state.decided if state and state.status == "processed" else (lambda *a: False)
        fresh = [f for f in listing.files if not decided(*f)]
        skipped = [r for r in listing.skipped if not decided(r[0])]
        errors = [r for r in listing.errors if not decided(r[0])]
        if not fresh and not skipped and not errors:
            report = RunReport(run, "unchanged", previous, seconds=0.0, records=records.folder)
            if state and previous and self.uploader is not None and (state.upload is None or state.upload.failed):
                log.info("run %s: retrying the upload left unfinished by an earlier pass", run)
                report.upload = self._upload(run, records, previous)
                records.write_state(state.model_copy(update={"upload": report.upload, "updated_at": _now()}))
            else:
                log.info("run %s: nothing new (%d files already processed)", run, len(state.processed_paths) if state else 0)
            report.seconds = time.perf_counter() - started
            return report
        manifest, kept = self._manifest(run, fresh, previous)
        atomic_write(records.manifest_path, manifest)
        log.info("run %s: deduplicating %d files%s", run, len(fresh),  # 0: only entries that are not input
                 f" against {len(kept)} kept images" if kept else "")
        decided, data = self._decide(run, records, len(fresh)) if fresh else (self._nothing_to_decide(run), None)
        result = _with_entries(decided, skipped, errors)  # (skipped and error entries stay where they are)
        if result is not decided:
            data = None  # the task's JSON lacks these entries
        number = (state.passes if state and state.status == "processed" else 0) + 1
        seen = {path: (size, mtime) for path, size, mtime in fresh}
        combined = _merge(previous, result) if previous else result
        if self.dry_run and state is not None and state.status != "dry-run":
            # a run with records of its own (processed, or a pass cut short): a dry run never replaces them (the
            # next real pass needs them: the kept images, where each file went, an unfinished journal)
            plan = records.folder / DRY_RUN_PLAN
            records.write_model(plan, combined)
            log.info("run %s: dry run, nothing moved; the plan (where each file would go) is in %s; the run's "
                     "records (%s) are untouched", run, plan, state.status)
            report = RunReport(run, "dry-run", combined, records=records.folder)
            report.seconds = time.perf_counter() - started
            return report
        if data is None:  # a first pass's result is the run's: serialised once
            data = result.model_dump_json(indent=2).encode()
        pass_path = records.write_pass(data, number)
        if combined is result:
            records.result_from_pass(pass_path, data)
        else:
            records.write_result(combined)
        report = RunReport(run, "dry-run" if self.dry_run else "processed", combined, records=records.folder)
        written_apart = False  # this pass's report, written by another process
        if self.dry_run:
            records.write_state(self._state(run, "dry-run", combined, number, state, seen=seen))
            log.info("run %s: dry run, nothing moved; the plan (where each file would go) is in %s", run,
                     records.result_path)
        else:
            from .journal import Journal

            moving = self._state(run, "moving", combined, number, state, seen=seen)
            moving.journal_from = Journal(records.journal_path).next_id()
            moving.processed_paths = state.processed_paths if state and state.status == "processed" else []
            records.write_state(moving)  # before any move: a crash from here on is finished by finish_interrupted
            apart = self._report_apart(records, combined)
            try:
                final, changed = self._move(run, records, result, moving.journal_from, report, seen)
            except BaseException:
                # its report is of the planned pass, which the next one finishes
                self._join_report_apart(run, records, apart)
                raise
            combined = _merge(previous, final) if previous else final
            if changed or previous is not None:
                self._write_result(records, combined)
            else:  # every file went where the pass planned: result.json, this pass's record, says so already (its
                # 29 MB serialised and written again took 0.2 s at the single-core end of a 40,000-file run)
                self._leave_for_agent(combined)
            report.result = combined
            if self.uploader is not None:
                report.upload = self._upload(run, records, combined)
            # the report's process is done before the run is: a kill from here on leaves no temporary file behind
            # (a later pass, which removes one, comes only to a run not marked processed)
            written_apart = self._join_report_apart(run, records, apart) and not changed
            records.write_state(self._state(run, "processed", combined, number, state, report.upload, seen=seen))
        if self.reporter is not None:
            try:
                path = records.report_path if written_apart else \
                    self.reporter(records.folder, combined, self.layout, previews=self.previews)
                log.info("run %s: report %s", run, path)
            except (OSError, ValueError) as exc:  # a report is a convenience: never fail a run for it
                log.warning("run %s: report not written: %s", run, exc)
            finally:
                self.previews.clear()
        report.seconds = time.perf_counter() - started
        log.info("run %s: %s (%.1f s)", run, describe_counts(combined.counts, dry_run=self.dry_run), report.seconds)
        return report

    def _report_apart(self, records: RunRecords, planned: DedupResult) -> BaseProcess | None:
        """A large full pass's report, started in another process before the moves and written while they run: from
        the run's result.json, which holds ``planned``, the run's result as the moves are to leave it (if a move
        ends otherwise, this process writes the report again after the moves). None below ``report_apart_from``
        files, or if that process cannot be started (then this one writes the report after the moves, as it does
        for a dry run)."""
        if self.reporter is None or self.report_apart_from is None or len(planned.files) < self.report_apart_from:
            return None
        from dedup_engine.processes import context

        from .report import write_report_apart

        thumbnails = records.folder / REPORT_THUMBNAILS
        release_free_memory()  # this process's freed memory back to the system, before another one takes some
        try:
            self.previews.save(thumbnails)  # (in the new process's arguments instead, their 20 MB at 40,000 images
            # took 0.1 s of this one's time: the pipe waited for that process to start)
            job = context().Process(target=write_report_apart, name="image-dedup-report", daemon=True,
                                    args=(self.reporter, records.folder, self.layout, thumbnails))
            job.start()
        except Exception as exc:  # noqa: BLE001 - e.g. a reporter that cannot be pickled: written here instead
            log.debug("run %s: the report is written after the moves (%s: %s)", planned.run, type(exc).__name__, exc)
            thumbnails.unlink(missing_ok=True)
            return None
        return job

    def _join_report_apart(self, run: str, records: RunRecords, apart: BaseProcess | None) -> bool:
        """Wait for the process ``_report_apart`` started (stopped if still at work REPORT_APART_WAIT seconds on) and
        remove its temporary file; whether it wrote the report. (If not, the runner writes it after the moves.)"""
        if apart is None:
            return False
        apart.join(REPORT_APART_WAIT)
        stuck = apart.is_alive()
        if stuck:
            apart.terminate()
            apart.join()
        (records.folder / REPORT_THUMBNAILS).unlink(missing_ok=True)
        if stuck:
            log.warning("run %s: the report process had not finished %g s after the moves; the report is written "
                        "here", run, REPORT_APART_WAIT)
        elif apart.exitcode != 0:
            log.warning("run %s: the report process failed (exit code %s); the report is written here",
                        run, apart.exitcode)
        return apart.exitcode == 0

    def fail(self, run: str, error: BaseException) -> None:
        """Record a failed run so that ``status`` shows it; its files were not moved."""
        records = self.records(run)
        previous = records.read_state()
        if previous is not None and previous.status == "moving":  # the journal finishes its moves on the next pass
            records.write_state(previous.model_copy(update={"error": f"{type(error).__name__}: {error}",
                                                            "updated_at": _now()}))
            return
        records.write_state(RunState(
            run=run, status="failed", updated_at=_now(), error=f"{type(error).__name__}: {error}",
            passes=previous.passes if previous else 0,
            processed_paths=previous.processed_paths if previous else [],
        ))

    # --- steps -------------------------------------------------------------------------------------------------

    def _manifest(self, run: str, files: Sequence[tuple[str, int, int]], previous: DedupResult | None
                  ) -> tuple[bytes, list[ManifestFile]]:
        """The pass's manifest as JSON (see ``manifest_json``), and its kept entries."""
        ctx_pointer = FileSystemContext(self.layout.root).pointer
        kept = []
        taken = {path for path, _, _ in files}
        if previous is not None:
            for outcome in previous.files:
                if outcome.status == "unique" and outcome.destination and outcome.width is not None:
                    if self.layout.absolute(outcome.destination).is_file():
                        # a new file may carry the name of a kept one that left the folder: name that one by its place
                        label = outcome.path if outcome.path not in taken else outcome.destination
                        if label not in taken:
                            taken.add(label)
                            kept.append(ManifestFile(path=label, file=ctx_pointer(outcome.destination)))
        return manifest_json(run, files, kept, ctx_pointer, _now()), kept

    def _decide(self, run: str, records: RunRecords, total: int) -> tuple[DedupResult, bytes | None]:
        """The task's result, each file's destination set on it, and the JSON the task wrote of it when that is
        this pass's record as it stands (the task hands its result over before it serialises it, and the
        destinations are set then: serialised once, where writing the pass's record serialised it again, 0.1 s at
        40,000 files)."""
        kept: list[DedupResult] = []

        def keep_result(result: DedupResult) -> None:
            self._place(run, result)
            kept.append(result)

        context = FileSystemContext(
            self.layout.root,
            linked_dirs=frozenset({self.layout.unique_dir, self.layout.archive_dir}),
            workers=self.workers,
            progress=self.progress(run, total) if self.progress else None,
            previews=self.previews.__setitem__ if self.reporter is not None else None,
            keep_result=keep_result,
        )
        pointer = context.pointer(self.layout.relative(records.manifest_path))
        overrides = self.params.model_dump(include={"method", "hash_algorithm", "hash_size", "max_distance",
                                                     "max_mse", "max_residual", "max_shift_px", "keep", "max_pixels"})
        self.task({"manifest": pointer, **overrides}, context)
        written = [w for w in context.written.values() if w.file_category == "PROCESSED"]
        if len(written) != 1:
            raise DedupError(f"run {run}: the task function wrote {len(written)} results instead of one")
        if len(kept) == 1:
            return kept[0], written[0].content
        result = DedupResult.model_validate_json(written[0].content)  # a task that hands over no object
        self._place(run, result)
        return result, None

    def _nothing_to_decide(self, run: str) -> DedupResult:
        """A pass that found only entries that are not input (a link, a Thumbs.db): no engine call."""
        now = _now()
        return DedupResult(run=run, method=self.params.method, params=self.params, counts=Counts(), files=[],
                           started_at=now, finished_at=now, tool_version=__version__)

    def _place(self, run: str, result: DedupResult) -> None:
        """Each outcome's destination, set on the outcome itself (a copy of each cost 0.3 s at 40,000 files)."""
        for outcome in result.files:
            outcome.destination = self._destination(run, outcome)

    def _destination(self, run: str, outcome: FileOutcome) -> str | None:
        if outcome.sha256 is None or outcome.status in ("error", "skipped"):  # left untouched
            return None
        return self.layout.destination(run, outcome)

    def finish_interrupted(self, run: str) -> bool:
        """Complete a pass that was stopped during its moves: finish the journal, record where files went."""
        records = self.records(run)
        state = records.read_state()
        if state is None or state.status != "moving" or state.journal_from is None:
            return False
        log.warning("run %s: finishing a pass that was interrupted during its moves", run)
        planned = records.read_pass(state.passes)
        report = RunReport(run, "processed")
        final, _ = self._move(run, records, planned, state.journal_from, report, self._seen_by_decision(records))
        previous = records.read_result()  # written before the moves: it holds this pass's planned outcomes
        if previous is not None:
            this_pass = {(o.path, o.destination, o.sha256) for o in planned.files}
            previous = previous.model_copy(update={
                "files": [o for o in previous.files if (o.path, o.destination, o.sha256) not in this_pass]})
        combined = _merge(previous, final) if previous else final
        self._write_result(records, combined)
        records.write_state(self._state(run, "processed", combined, state.passes, state))
        return True

    def _write_result(self, records: RunRecords, result: DedupResult) -> None:
        """The run's result once its files are in place; with ``result_to_agent`` also in unique/<run>/."""
        records.write_result(result)
        self._leave_for_agent(result)

    def _leave_for_agent(self, result: DedupResult) -> None:
        if self.result_to_agent:
            log.info("run %s: result left for the agent in %s", result.run, leave_result(self.layout, result))

    def interrupted_runs(self) -> list[str]:
        return runs_with_status(self.layout.runs_records_root(), "moving")

    def _move(self, run: str, records: RunRecords, result: DedupResult, journal_from: int,
              report: RunReport, seen: dict[str, tuple[int, int]]) -> tuple[DedupResult, bool]:
        """Move every planned file not yet moved in this pass, each only if its size and mtime are still what
        ``seen`` says the decision saw; read the final places back from the journal. The result with each file's
        final place, and whether any outcome differs from ``result``'s (another name taken, a move failed)."""
        from .journal import Journal
        from .mover import Mover

        journal = Journal(records.journal_path)
        mover = Mover(self.layout.root, journal)
        mover.recover()
        run_dir = self.layout.run_dir(run)
        src_of = {o.path: posix_join(run, o.path) for o in result.files}
        before = journal.state()
        handled = {m.src for i, m in before.planned.items() if i >= journal_from}
        todo = [o for o in result.files if o.destination and src_of[o.path] not in handled]
        # relative paths as text: the mover joins them to the root itself (and refuses any that would leave it)
        moved = mover.move_all([(src_of[o.path], o.destination, o.sha256, seen.get(o.path)) for o in todo])
        # the journal as it now is, without reading it again (0.3 s at 40,000 files): what it held before, and
        # the outcomes of the moves this process has just planned and recorded in it
        latest = {m.src: i for i, m in sorted(before.planned.items()) if i >= journal_from}
        latest.update((m.src, m.id) for m in moved)  # later moves, in the order of their ids
        done = {**before.done, **{m.id: m.dst for m in moved if m.ok}}
        failed = {**before.failed, **{m.id: m.error or "not moved" for m in moved if not m.ok}}
        final = []
        changed = False
        for outcome in result.files:
            move_id = latest.get(src_of[outcome.path])
            if move_id is None:
                final.append(outcome)  # never planned: it stays where it is (unreadable, symlink)
            elif move_id in done:
                report.moved += 1
                # a copy only where the file took another name (copying every outcome cost 0.4 s at 40,000 files)
                if done[move_id] == outcome.destination:
                    final.append(outcome)
                else:
                    final.append(outcome.model_copy(update={"destination": done[move_id]}))
                    changed = True
            else:
                changed = True
                why = failed.get(move_id, "not moved")
                report.move_errors.append(f"{outcome.path}: {why}")
                log.error("run %s: %s not moved: %s", run, outcome.path, why)
                final.append(outcome.model_copy(update={"destination": None, "error": why}))
        mover.prune_empty_dirs(run_dir)
        return result.model_copy(update={"files": final}), changed

    @staticmethod
    def _seen_by_decision(records: RunRecords) -> dict[str, tuple[int, int]]:
        """Size and mtime of each file of an interrupted pass when it was listed, before its bytes were read, from
        the pass's manifest (a pass that is not interrupted has them in memory)."""
        try:
            manifest = FolderManifest.model_validate_json(records.manifest_path.read_bytes())
        except (OSError, ValueError):
            return {}
        return {f.path: (f.size_bytes, f.mtime_ns) for f in manifest.files
                if f.size_bytes is not None and f.mtime_ns is not None}

    def _upload(self, run: str, records: RunRecords, result: DedupResult) -> UploadSummary:
        from .uploader import UploadItem

        items = [
            UploadItem(self.layout.absolute(o.destination), self._key_path(run, o), o.sha256)
            for o in result.files
            if o.status in ("unique", "passthrough") and o.destination and o.sha256  # never archived or restored
        ]
        upload = self.uploader.upload_run(run, items)
        self.uploader.upload_result(run, records.result_path)
        place = PurePosixPath(agent_result_path(self.layout, result))
        if self.result_to_agent and self.layout.absolute(str(place)).is_file():  # what the agent sends, same name
            self.uploader.upload_result(run, self.layout.absolute(str(place)), key_path=place.name)
        summary = UploadSummary(
            destination=str(getattr(self.uploader, "describe", lambda: "s3")()),
            uploaded=upload.uploaded, skipped=upload.skipped, failed=len(upload.failed),
            failures=[str(f) for f in upload.failed][:50],
        )
        if upload.failed:
            log.error("run %s: %d uploads failed; they are retried on the next pass", run, len(upload.failed))
        return summary

    def _key_path(self, run: str, outcome: FileOutcome) -> str:
        """The object's name under <prefix>/<run>/: the file's name in unique/<run>/, which is its run-relative path
        unless it had to take another name there (a new file under the name of one already sent: "img (1).png")."""
        place = PurePosixPath(outcome.destination or "")
        folder = PurePosixPath(self.layout.unique_dir, run)
        return str(place.relative_to(folder)) if place.is_relative_to(folder) else outcome.path

    def _state(self, run: str, status: str, result: DedupResult, passes: int, previous: RunState | None,
               upload: UploadSummary | None = None, *, seen: dict[str, tuple[int, int]] | None = None) -> RunState:
        """Decided files: moved ones and errors left in place (with their size and mtime, to notice a change);
        a file whose move was refused (changed meanwhile) is not decided and comes back next pass."""
        paths = sorted(o.path for o in result.files if o.destination or o.status in ("error", "skipped"))
        left = dict(previous.left_in_place) if previous and previous.status in ("processed", "moving") else {}
        latest = {o.path: o for o in result.files}  # a path decided in several passes: the latest outcome (see _merge)
        for outcome in latest.values():
            if outcome.status == "skipped":
                left[outcome.path] = NOT_A_FILE  # decided while it is there, whatever its size
            elif outcome.status == "error" and not outcome.destination:
                if seen and outcome.path in seen:
                    left[outcome.path] = seen[outcome.path]
                elif outcome.path not in left:  # refused by the listing (symlink, device...): no size to compare
                    left[outcome.path] = NOT_A_FILE
            elif seen and outcome.path in seen:  # decided again in this pass, and moved
                left.pop(outcome.path, None)
        return RunState(run=run, status=status, updated_at=_now(), passes=passes, counts=result.counts,  # type: ignore[arg-type]
                        processed_paths=paths if status == "processed" else [], upload=upload,
                        restored=previous.restored if previous else [], left_in_place=left)


def release_free_memory() -> None:
    """Hand the memory the C allocator holds free back to the system: glibc keeps what a run's objects freed (at
    40,000 files, after the decisions, about 250 MB of the runner's 630-750 MB, given back in 15 ms by its
    ``malloc_trim``), which the report's process would otherwise add to. Elsewhere (Windows, macOS, musl) nothing."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)  # the program's own symbols: glibc's, where it has them
    except (OSError, AttributeError):  # no glibc (musl has no malloc_trim)
        pass


def manifest_json(run: str, files: Sequence[tuple[str, int, int]], kept: Sequence[ManifestFile],
                  pointer: Callable[[str], dict[str, Any]], created_at: dt.datetime) -> bytes:
    """``FolderManifest(run=run, created_at=created_at, files=..., kept=kept).model_dump_json(indent=2)`` for the
    listing's (path, size, mtime) entries, each with the pointer of ``run/path``, written without making a model of
    each entry: the listing's own names, sizes and times, which the task validates as it reads the manifest and
    names any entry it refuses (two models an entry cost 12 us, half a second at 40,000)."""
    payload = FolderManifest(run=run, created_at=created_at, files=[], kept=list(kept)).model_dump(mode="json")
    prefix = str(PurePosixPath(run))
    payload["files"] = [{"path": path, "size_bytes": size, "mtime_ns": mtime, "sha256": None,
                         "file": pointer(f"{prefix}/{path}")} for path, size, mtime in files]
    return to_json(payload, indent=2)


def _merge(previous: DedupResult, current: DedupResult) -> DedupResult:
    """The run's whole result after a later pass: earlier outcomes stay, new files are added. A file decided again
    (an error that changed) replaces its earlier outcome; a new file under the name of one that was moved out
    earlier is another file, so both outcomes stay, the earlier one first."""
    replaced = {o.path for o in current.files}
    earlier = [o for o in previous.files if o.path not in replaced or _moved_out(o, previous.run)]
    outcomes = sorted([*earlier, *current.files], key=lambda o: natural_key(o.path))  # stable: earlier first
    return current.model_copy(update={"files": outcomes, "counts": count(outcomes), "started_at": previous.started_at,
                                      "timings": _summed(previous.timings, current.timings)})


def describe_counts(c: Counts, *, dry_run: bool = False) -> str:
    """One line for the log: what happened, or in a dry run what would happen."""
    if dry_run:
        return (f"dry run, nothing moved: {c.total} files: {c.unique} would go to unique, {c.duplicate} duplicates "
                f"would be archived, {c.passthrough} would pass through, {c.error} errors, {c.skipped} skipped")
    return (f"{c.total} files: {c.unique} unique, {c.duplicate} duplicates archived, {c.error} errors, "
            f"{c.passthrough} passed through, {c.skipped} skipped, {c.restored} restored")


def count(outcomes: Sequence[FileOutcome]) -> Counts:
    counts = Counts(total=len(outcomes))
    for outcome in outcomes:
        setattr(counts, outcome.status, getattr(counts, outcome.status) + 1)
    return counts


def _summed(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """A run's timings over its passes: each phase summed (each pass's own are in passes/NNNN.json)."""
    return {key: round(a.get(key, 0.0) + b.get(key, 0.0), 4) for key in {**a, **b}}


def _with_entries(result: DedupResult, skipped: Sequence[tuple[str, str]],
                  errors: Sequence[tuple[str, str]]) -> DedupResult:
    """The engine's result plus the entries the listing did not take as input: each gets its one outcome."""
    if not skipped and not errors:
        return result
    extra = [FileOutcome(path=path, status="skipped", reason=why) for path, why in skipped]
    extra += [FileOutcome(path=path, status="error", error=why) for path, why in errors]
    files = sorted([*result.files, *extra], key=lambda o: natural_key(o.path))
    return result.model_copy(update={"files": files, "counts": count(files)})


def _moved_out(outcome: FileOutcome, run: str) -> bool:
    """Did this file leave the run folder (to unique/ or archive/)? Restored files are back in it."""
    return bool(outcome.destination) and not PurePosixPath(outcome.destination).is_relative_to(PurePosixPath(run))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
