"""Watching the drop zone: file-system events (watchdog) mark runs dirty; a scan confirms they have settled.

Events are only hints: network shares drop them, so dirty runs are re-listed, and every ``rescan_seconds`` all
runs are. ``--polling`` uses watchdog's polling observer (network shares); if the native observer cannot start
(e.g. the inotify watch limit), the watcher falls back to polling and says so in the log.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Collection, Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from .runs import RunListing, RunRef, discover_runs, included, list_run_files, run_for_path
from .settle import SettleTracker, open_for_writing

log = logging.getLogger("local_runner.watcher")

NeedsProcessing = Callable[[RunListing], bool]


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: RunWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        for raw in (event.src_path, getattr(event, "dest_path", "")):
            if raw:
                self.watcher.mark_dirty(Path(raw if isinstance(raw, str) else raw.decode()))


class RunWatcher:
    def __init__(
        self,
        root: Path,
        *,
        needs_processing: NeedsProcessing,
        depth: int = 1,
        include: Sequence[str] = (),
        exclude_dirs: Collection[str] = (),
        settle_seconds: float = 30.0,
        polling: bool = False,
        poll_interval: float = 5.0,
        rescan_seconds: float = 60.0,
        observer_factory: Callable[[], BaseObserver] | None = None,
        clock: Callable[[], float] = time.monotonic,
        open_files: Callable[[Path, Sequence[Path]], list[Path]] = open_for_writing,
    ) -> None:
        self.root = root
        self.needs_processing = needs_processing
        self.depth = depth
        self.include = tuple(include)
        self.exclude_dirs = frozenset(exclude_dirs)
        self.polling = polling
        self.poll_interval = poll_interval
        self.rescan_seconds = rescan_seconds
        self.tracker = SettleTracker(settle_seconds, clock, open_files)
        self._observer_factory = observer_factory
        self._observer: BaseObserver | None = None
        self._dirty: set[str] = set()
        self._watching: set[str] = set()  # runs seen but not yet settled or processed
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._clock = clock
        self._last_rescan = -float("inf")
        self.mode = "not started"

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        handler = _Handler(self)
        if not self.polling:
            try:
                observer = (self._observer_factory or Observer)()
                observer.schedule(handler, str(self.root), recursive=True)
                observer.start()
                self._observer, self.mode = observer, "native events"
            except OSError as exc:
                log.warning("native file events unavailable (%s): polling every %.0f s instead", exc, self.poll_interval)
                self._observer = None
        if self._observer is None:
            observer = PollingObserver(timeout=self.poll_interval)
            observer.schedule(handler, str(self.root), recursive=True)
            observer.start()
            self._observer, self.mode = observer, "polling"
        log.info("watching %s (%s, runs at depth %d, settle %.0f s)", self.root, self.mode, self.depth,
                 self.tracker.settle_seconds)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None
        self._wake.set()

    def __enter__(self) -> RunWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- events and scans --------------------------------------------------------------------------------------

    def mark_dirty(self, path: Path) -> None:
        run = run_for_path(self.root, path, self.depth)
        if run is None or run.split("/", 1)[0] in self.exclude_dirs:
            return
        with self._lock:
            self._dirty.add(run)
        self._wake.set()

    def wait_settled(self, timeout: float | None = None) -> list[RunListing]:
        """Block until at least one run has settled and needs processing (or ``timeout`` passes)."""
        deadline = None if timeout is None else self._clock() + timeout
        while True:
            ready = self.scan()
            if ready:
                return ready
            remaining = None if deadline is None else deadline - self._clock()
            if remaining is not None and remaining <= 0:
                return []
            waits = [w for name in self._watching if (w := self.tracker.waiting(name)) is not None]
            pause = min([self.poll_interval, *[w + 0.05 for w in waits]])
            if remaining is not None:
                pause = min(pause, remaining)
            self._wake.wait(max(pause, 0.01))
            self._wake.clear()

    def scan(self) -> list[RunListing]:
        """List dirty and watched runs (all runs on the periodic rescan); return those settled and needing work."""
        now = self._clock()
        with self._lock:
            names = self._dirty | self._watching
            self._dirty = set()
        runs = {r.name: r for r in self._discover()} if now - self._last_rescan >= self.rescan_seconds else None
        if runs is not None:
            self._last_rescan = now
            names |= set(runs)
        ready: list[RunListing] = []
        for name in sorted(names):
            ref = runs.get(name) if runs is not None else None
            ref = ref or RunRef(name, self.root.joinpath(*name.split("/")))
            if not ref.path.is_dir() or not included(name.split("/")[:-1], self.include):
                self._watching.discard(name)
                self.tracker.forget(name)
                continue
            listing = list_run_files(ref)
            if not listing.files and not listing.skipped and not listing.errors:
                self._watching.discard(name)
                continue
            if not self.needs_processing(listing):
                self._watching.discard(name)
                self.tracker.forget(name)
                continue
            if self.tracker.observe(listing):
                ready.append(listing)
                self._watching.discard(name)
                self.tracker.forget(name)
                log.info("run %s: settled, %d files", name, len(listing.files))
            elif name not in self._watching:
                self._watching.add(name)
                log.info("run %s: %d files, waiting for %.0f s of quiet", name, len(listing.files),
                         self.tracker.settle_seconds)
        return ready

    def _discover(self) -> list[RunRef]:
        return discover_runs(self.root, depth=self.depth, include=self.include, exclude_dirs=self.exclude_dirs)
