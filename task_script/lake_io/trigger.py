"""A run manifest as the pipeline's trigger: where its files are in the data lake, and whether they are all there.

The local runner's label-only mode writes ``dedup-manifest.json`` into the run folder; the agent uploads it with
the run's files. Entries without a data-lake pointer are looked up by key: ``<base>/<path>``, where ``<base>`` is
the folder of the manifest's own ``fileKey`` (the files sit beside it), or the configured ``lake_prefix`` (``{run}``
in it is replaced by the manifest's run name), in the manifest's bucket. Before anything is labelled, every listed
file is read and its sha256 compared with the manifest's: a missing or different file makes the whole run fail
with one message, so that the platform's retry can run it again once the agent has caught up.
"""

from __future__ import annotations

import hashlib
import posixpath
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from dedup_engine.grouping import natural_key
from dedup_engine.models import FilePointer, FolderManifest, ManifestFile

from .reader import Pointer, Read
from .settings import IoSettings

NAMED = 20  # paths named in the message per kind of problem


def locate(manifest: FolderManifest, manifest_pointer: Pointer, lake_prefix: str | None) -> FolderManifest:
    """The manifest with a data-lake pointer on every entry (pointers it already has are kept)."""
    if lake_prefix:
        base = lake_prefix.replace("{run}", manifest.run).strip("/")
    else:
        base = posixpath.dirname(manifest_pointer["fileKey"])

    def pointed(entry: ManifestFile) -> ManifestFile:
        if entry.file is not None:
            return entry
        key = f"{base}/{entry.path}" if base else entry.path
        return entry.model_copy(update={"file": FilePointer(fileKey=key, bucket=manifest_pointer.get("bucket"))})

    return manifest.model_copy(update={"files": [pointed(e) for e in manifest.files],
                                       "kept": [pointed(e) for e in manifest.kept]})


class Verification:
    """Reads every entry that has a sha256, in a pool of threads, and compares; ``on_clean`` runs once all match."""

    def __init__(self, read: Callable[[str, Pointer], Read], entries: Sequence[ManifestFile], settings: IoSettings,
                 on_clean: Callable[[], None], where: str) -> None:
        self._read = read
        self._on_clean = on_clean
        self._where = where
        self._total = len(entries)
        self._paths = frozenset(e.path for e in entries)
        self._left = len(entries)
        self._lock = threading.Condition()
        self._checked: set[str] = set()
        self._done = threading.Event()
        self.missing: list[str] = []
        self.differ: list[str] = []
        self.unreadable: list[str] = []
        self._pool = ThreadPoolExecutor(max_workers=settings.read_concurrency, thread_name_prefix="lake-check")
        for entry in sorted(entries, key=lambda e: natural_key(e.path)):  # the order the engine reads them in
            self._pool.submit(self._check, entry)
        if not entries:
            self._finish()

    def __enter__(self) -> Verification:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def failed(self) -> bool:
        return self._done.is_set() and self.problems > 0

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.differ) + len(self.unreadable)

    def wait_for(self, path: str) -> None:
        """Until ``path`` has been checked (or was never to be): the run's own read of it then comes after, never
        at the same time (the SDK's test data lake serves both from one file object)."""
        with self._lock:
            self._lock.wait_for(lambda: path in self._checked or self._done.is_set() or path not in self._paths)

    def wait(self) -> str | None:
        """None once every file is there with its bytes; otherwise the one message that says what is not."""
        self._done.wait()
        return self.message() if self.problems else None

    def message(self) -> str:
        parts = [_named(self.missing, "not in the data lake (yet)"),
                 _named(self.differ, "in the data lake with other bytes than the manifest's sha256"),
                 _named(self.unreadable, "could not be read")]
        return (f"{self.problems} of the {self._total} files listed in the manifest are not ready under "
                f"{self._where}: " + "; ".join(p for p in parts if p) +
                ". Nothing was labelled or written; run the task again once the agent has uploaded the run "
                "(the pipeline's retry does).")

    def _check(self, entry: ManifestFile) -> None:
        read: Read | None = None
        try:
            read = self._read(entry.path, entry.file.model_dump(exclude_none=True))  # type: ignore[union-attr]
        finally:
            with self._lock:
                if read is None or read.failure is not None:
                    missing = read is not None and read.failure is not None and read.failure.missing
                    (self.missing if missing else self.unreadable).append(
                        entry.path if missing or read is None else f"{entry.path} ({read.failure})")
                elif hashlib.sha256(read.data or b"").hexdigest() != entry.sha256:
                    self.differ.append(entry.path)
                self._left -= 1
                last = self._left == 0
                self._checked.add(entry.path)
                self._lock.notify_all()
            if last:
                self._finish()

    def _finish(self) -> None:
        if not self.problems:
            self._on_clean()
        self._done.set()


def _named(paths: list[str], what: str) -> str:
    if not paths:
        return ""
    ordered = sorted(paths)
    shown = ", ".join(ordered[:NAMED]) + (f" and {len(ordered) - NAMED} more" if len(ordered) > NAMED else "")
    return f"{len(paths)} {what}: {shown}"


def needs_check(manifest: FolderManifest) -> list[ManifestFile]:
    """Entries whose bytes the manifest vouches for (the local runner's label-only mode writes a sha256 for each)."""
    return [entry for entry in [*manifest.files, *manifest.kept] if entry.sha256]
