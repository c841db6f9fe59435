"""The drop-zone service: find settled runs, process each, keep going when one fails.

``run_once`` processes every run that has settled (by file age) and reports the others as pending;
``run_forever`` watches for file events and processes runs as they settle, until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

from dedup_engine import DedupError, DedupParams

from .exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, EXIT_UPLOAD_FAILED
from .layout import Layout
from .processing import RunFiles, RunProcessor, RunReport
from .progress import progress_factory
from .records import RunState, recorded_runs
from .runs import RunListing, RunRef, discover_runs, list_run_files, with_known_runs
from .settle import settled_by_age

if TYPE_CHECKING:
    from .label_mode import LabelOnlyProcessor

log = logging.getLogger("local_runner.service")



class Service:
    def __init__(
        self,
        layout: Layout,
        processor: RunProcessor | LabelOnlyProcessor,
        *,
        depth: int = 1,
        include: tuple[str, ...] = (),
        settle_seconds: float = 30.0,
        polling: bool = False,
        poll_interval: float = 5.0,
        after_run: Callable[[], Any] | None = None,
        retry_seconds: float = 300.0,
    ) -> None:
        self.retry_seconds = retry_seconds
        self._stop = threading.Event()
        self.layout = layout
        self.processor = processor
        self.depth = depth
        self.include = include
        self.settle_seconds = settle_seconds
        self.polling = polling
        self.poll_interval = poll_interval
        self.after_run = after_run

    @classmethod
    def from_args(cls, layout: Layout, params: DedupParams, args: argparse.Namespace) -> Service:
        uploader = None
        if args.upload_to:
            from .uploader import Uploader, UploadSettings

            uploader = Uploader(UploadSettings.from_url(args.upload_to, endpoint_url=args.s3_endpoint_url,
                                                        max_attempts=args.s3_max_attempts))
        if args.mode == "label":
            from .label_mode import LabelOnlyProcessor

            return cls(layout, LabelOnlyProcessor(layout), depth=args.run_depth, include=tuple(args.include),
                       settle_seconds=args.settle_seconds, polling=args.polling, poll_interval=args.poll_interval)
        reporter = index = None
        try:
            from .report import write_index, write_report

            reporter = write_report
            index = lambda: write_index(layout)  # noqa: E731
        except ImportError:  # the report is optional equipment
            pass
        processor = RunProcessor(
            layout, params, workers=args.workers, dry_run=args.dry_run, uploader=uploader,
            progress=None if args.no_progress else progress_factory(), reporter=reporter,
            result_to_agent=args.result_to_agent,
        )
        return cls(layout, processor, depth=args.run_depth, include=tuple(args.include),
                   settle_seconds=args.settle_seconds, polling=args.polling, poll_interval=args.poll_interval,
                   after_run=index)

    def needs_processing(self, listing: RunListing) -> bool:
        state = self.processor.records(listing.run.name).read_state()
        if state is None or state.status != self.processor.done_status:
            return True
        if any(not state.decided(f.path, f.size, f.mtime_ns) for f in listing.files) or \
                any(not state.decided(p) for p, _ in (*listing.skipped, *listing.errors)):
            return True
        return bool(self.processor.uploader is not None and (state.upload is None or state.upload.failed))

    def process(self, listing: RunListing) -> RunReport | None:
        """Process one run; None if it failed (recorded for ``status``)."""
        run = listing.run.name
        try:
            return self.processor.process(RunFiles(run, [(f.path, f.size, f.mtime_ns) for f in listing.files],
                                                   list(listing.skipped), list(listing.errors)))
        except (DedupError, OSError) as exc:  # one run's trouble never stops the watcher
            log.error("run %s failed: %s", run, exc)
            try:
                self.processor.fail(run, exc)
            except OSError as also:
                log.error("run %s: its failure could not be recorded: %s", run, also)
            return None
        finally:
            if self.after_run is not None:
                try:
                    self.after_run()
                except OSError as exc:
                    log.warning("run index not updated: %s", exc)

    def finish_interrupted(self) -> None:
        """Runs whose moves were interrupted are finished first, even if their run folder is now empty."""
        for run in self.processor.interrupted_runs():
            try:
                self.processor.finish_interrupted(run)
            except (DedupError, OSError) as exc:
                log.error("run %s: the interrupted pass could not be finished: %s", run, exc)

    def retry_uploads(self, skip: frozenset[str] | set[str] = frozenset(),
                      states: Sequence[RunState] | None = None) -> list[RunReport | None]:
        """Runs whose folder is empty now (every file moved) but whose upload is unfinished: upload again.
        ``states``: the recorded runs' states, when the caller has just read them."""
        if self.processor.uploader is None or self.processor.dry_run:
            return []
        reports = []
        if states is None:
            states = [state for _, state in recorded_runs(self.layout.runs_records_root())]
        for state in states:
            if state.run in skip or state.status != "processed":
                continue
            if state.upload is None or state.upload.failed:
                reports.append(self.process(RunListing(RunRef(state.run, self.layout.run_dir(state.run)), ())))
        return reports

    def run_once(self) -> int:
        if not self.processor.dry_run:
            self.finish_interrupted()
        runs = discover_runs(self.layout.root, depth=self.depth, include=self.include,
                             exclude_dirs=self.layout.output_names)
        states = [state for _, state in recorded_runs(self.layout.runs_records_root())]  # read once for both
        runs = with_known_runs(self.layout.root, runs, [state.run for state in states], self.include)
        reports = self.retry_uploads(skip={r.name for r in runs}, states=states)
        pending = done = 0
        for ref in runs:
            listing = list_run_files(ref)
            if not self.needs_processing(listing):
                continue
            if not settled_by_age(listing, self.settle_seconds):
                pending += 1
                log.info("run %s: still being written (files changed in the last %.0f s): left for later",
                         ref.name, self.settle_seconds)
                continue
            report = self.process(listing)
            reports.append(report)
            done += report is not None
        failed = sum(1 for r in reports if r is None)  # a run whose upload was retried may fail too
        uploads = sum(r.upload.failed for r in reports if r is not None and r.upload is not None)
        log.info("done: %d runs processed, %d failed, %d pending, %d already up to date; %d uploads failed",
                 done, failed, pending, len(runs) - done - failed - pending, uploads)
        if failed:
            return EXIT_RUN_FAILED
        return EXIT_UPLOAD_FAILED if uploads else EXIT_OK

    def run_forever(self) -> int:
        from .watcher import RunWatcher  # here: a --once pass never imports watchdog (28 ms of its start)

        watcher = RunWatcher(
            self.layout.root, needs_processing=self.needs_processing, depth=self.depth, include=self.include,
            exclude_dirs=self.layout.output_names, settle_seconds=self.settle_seconds, polling=self.polling,
            poll_interval=self.poll_interval,
        )
        if not self.processor.dry_run:
            self.finish_interrupted()
        try:
            with watcher:
                self.retry_uploads()
                last_retry = time.monotonic()
                while not self._stop.is_set():
                    for listing in watcher.wait_settled(timeout=min(self.retry_seconds, 5.0)):
                        self.process(listing)
                    if time.monotonic() - last_retry >= self.retry_seconds:
                        self.retry_uploads()  # an S3 outage ends: the unfinished uploads go
                        last_retry = time.monotonic()
        except KeyboardInterrupt:
            log.info("stopped")
            return EXIT_INTERRUPTED
        log.info("stopped")
        return EXIT_OK

    def stop(self) -> None:
        """Ask ``run_forever`` to return after the run it is processing (from another thread)."""
        self._stop.set()
