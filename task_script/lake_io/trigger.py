"""A run manifest as the pipeline's trigger: where its files are in the data lake, and whether they are all there.

The local runner's label-only mode writes ``dedup-manifest.json`` into the run folder; the agent uploads it with
the run's files. Entries without a data-lake pointer are looked up by key: ``<base>/<path>``, where ``<base>`` is
the folder of the manifest's own ``fileKey`` (the files sit beside it), or the configured ``lake_prefix`` (``{run}``
in it is replaced by the manifest's run name), in the manifest's bucket. Each listed file is read once, and its
sha256 (the one the engine computes from the bytes it decides on) compared with the manifest's; no label is applied
before all of them match: a missing or different file makes the whole run fail with one message, so that the
platform's retry can run it again once the agent has caught up.
"""

from __future__ import annotations

import hashlib
import posixpath
from typing import Sequence

from dedup_engine.models import FileOutcome, FilePointer, FolderManifest, ManifestFile

from .reader import Pointer, Read

NAMED = 20  # paths named in the message per kind of problem


def lake_base(run: str, manifest_key: str, lake_prefix: str | None) -> str:
    """Where a manifest's files are in the data lake: ``lake_prefix`` with ``{run}`` filled in, or else the
    manifest's own folder."""
    return lake_prefix.replace("{run}", run) if lake_prefix else posixpath.dirname(manifest_key)


def locate(manifest: FolderManifest, manifest_pointer: Pointer, lake_prefix: str | None) -> FolderManifest:
    """The manifest with a data-lake pointer on every entry (pointers it already has are kept)."""
    base = lake_base(manifest.run, manifest_pointer["fileKey"], lake_prefix)
    base = base.strip("/") if lake_prefix else base  # a prefix may be given with slashes around it

    def pointed(entry: ManifestFile) -> ManifestFile:
        if entry.file is not None:
            return entry
        key = f"{base}/{entry.path}" if base else entry.path
        return entry.model_copy(update={"file": FilePointer(fileKey=key, bucket=manifest_pointer.get("bucket"))})

    return manifest.model_copy(update={"files": [pointed(e) for e in manifest.files],
                                       "kept": [pointed(e) for e in manifest.kept]})


class ManifestCheck:
    """The manifest's sha256 held against each file's bytes as the run reads them, once.

    A read that fails, or whose size differs from the manifest's, is a problem at once (``failed``: the caller then
    stops deciding and reads the rest only to check them, with :meth:`bytes_read`). Files that are decided are
    checked on their outcome, whose ``sha256`` the engine computed from the very bytes it decided on; kept entries
    (never decided) on their bytes. Single-threaded: everything is called from the thread that drives the engine.
    """

    def __init__(self, entries: Sequence[ManifestFile], where: str) -> None:
        self._where = where
        self._expected = {e.path: e for e in entries}
        self._checked: set[str] = set()
        self.missing: list[str] = []
        self.differ: list[str] = []
        self.unreadable: list[str] = []

    @property
    def failed(self) -> bool:
        return self.problems > 0

    @property
    def problems(self) -> int:
        return len(self.missing) + len(self.differ) + len(self.unreadable)

    def read(self, read: Read) -> None:
        """A read handed to the engine: a failure or another size is noted now; the sha256 waits for the outcome."""
        entry = self._expected.get(read.path)
        if entry is None:
            return
        if read.failure is not None:
            self._note(read.path, self.missing if read.failure.missing else self.unreadable,
                       read.path if read.failure.missing else f"{read.path} ({read.failure})")
        elif entry.size_bytes is not None and len(read.data or b"") != entry.size_bytes:
            self._note(read.path, self.differ, read.path)

    def bytes_read(self, read: Read) -> None:
        """A read nobody else hashes (a kept entry, or a file read after the run was given up): checked whole."""
        self.read(read)
        if read.path in self._expected and read.path not in self._checked:
            self._compare(read.path, hashlib.sha256(read.data or b"").hexdigest())

    def outcome(self, outcome: FileOutcome) -> None:
        if outcome.path in self._expected and outcome.path not in self._checked:
            if outcome.sha256 is None:  # never read (the local runner's workers read for themselves)
                self._note(outcome.path, self.unreadable, f"{outcome.path} ({outcome.error})")
            else:
                self._compare(outcome.path, outcome.sha256)

    def message(self) -> str | None:
        """None once every listed file was there with its bytes; otherwise the one message that says what is not."""
        unseen = sorted(set(self._expected) - self._checked)
        if not self.problems and not unseen:
            return None
        parts = [_named(self.missing, "not in the data lake (yet)"),
                 _named(self.differ, "in the data lake with other bytes than the manifest's sha256"),
                 _named(self.unreadable, "could not be read"),
                 _named(unseen, "not checked (the run stopped before they were read)")]
        return (f"{self.problems + len(unseen)} of the {len(self._expected)} files listed in the manifest are not "
                f"ready under {self._where}: " + "; ".join(p for p in parts if p) +
                ". Nothing was labelled or written; run the task again once the agent has uploaded the run "
                "(the pipeline's retry does).")

    def _compare(self, path: str, sha256: str) -> None:
        if sha256 != self._expected[path].sha256:
            self._note(path, self.differ, path)
        else:
            self._checked.add(path)

    def _note(self, path: str, kind: list[str], text: str) -> None:
        if path not in self._checked:
            self._checked.add(path)
            kind.append(text)


def _named(paths: list[str], what: str) -> str:
    if not paths:
        return ""
    ordered = sorted(paths)
    shown = ", ".join(ordered[:NAMED]) + (f" and {len(ordered) - NAMED} more" if len(ordered) > NAMED else "")
    return f"{len(paths)} {what}: {shown}"


def needs_check(manifest: FolderManifest) -> list[ManifestFile]:
    """Entries whose bytes the manifest vouches for (the local runner's label-only mode writes a sha256 for each)."""
    return [entry for entry in [*manifest.files, *manifest.kept] if entry.sha256]
