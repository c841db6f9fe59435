"""Journaled moves that never lose, overwrite or corrupt a file, whatever instant the process is killed at.

Each move is planned in the journal first. Same volume: a hard link at the destination (which fails rather than
overwrite), then the source is unlinked: at every instant the bytes exist under at least one name, and the rerun
finishes whichever half is missing. Across volumes (EXDEV) or where hard links are not supported: a copy to a
temporary name beside the destination, flushed to disk, its sha256 checked against the planned one, linked or
renamed into place without overwriting, and only then the source removed. Recovery looks at what exists (source,
destination, our temporary copy) and completes or restarts each pending move. A source whose size or mtime
changed since the decision is not moved. Symlinks are never followed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence, Union

from dedup_engine.errors import MoveError
from dedup_engine.models import PLAIN_PATH

from .journal import Journal, JournalState, PlannedMove, fsync_dir
from .layout import inside_parts, plain_text_inside, root_prefix

CHUNK = 1 << 20
NO_LINK_ERRORS = {errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.EACCES}


OsPath = Union[str, Path]  # the mover hands FileOps its paths as text (a Path a call cost a fifth of a move)


def file_sha256(path: OsPath) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


class FileOps:
    """The file-system calls the mover makes, on OS paths (text, or Path); tests subclass it to inject faults (a
    crash at step k, ENOSPC, EXDEV)."""

    def step(self, name: str) -> None:
        """Called before each state-changing step; a test raises here to simulate a crash."""

    def lstat(self, path: OsPath) -> os.stat_result | None:
        try:
            return os.lstat(path)
        except FileNotFoundError:
            return None

    def link(self, src: OsPath, dst: OsPath) -> None:
        self.step("link")
        os.link(src, dst, follow_symlinks=False)

    def unlink(self, path: OsPath) -> None:
        self.step("unlink")
        os.unlink(path)

    def rename_no_replace(self, src: OsPath, dst: OsPath) -> None:
        """Rename that refuses to replace: Windows' rename does; on POSIX we check first (tiny race, documented)."""
        self.step("rename")
        if os.name != "nt" and os.path.lexists(dst):
            raise FileExistsError(errno.EEXIST, "destination exists", str(dst))
        os.rename(src, dst)

    def copy(self, src: OsPath, dst: OsPath) -> None:
        self.step("copy")
        with open(src, "rb") as source, open(dst, "xb") as target:
            shutil.copyfileobj(source, target, CHUNK)
            target.flush()
            os.fsync(target.fileno())

    def sha256(self, path: OsPath) -> str:
        return file_sha256(path)

    def makedirs(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def fsync_dir(self, path: OsPath) -> None:
        fsync_dir(Path(path))


@dataclass(frozen=True)
class MoveOutcome:
    id: int
    src: str
    dst: str  # final destination, relative to the root
    ok: bool
    error: str | None = None


class Mover:
    def __init__(self, root: Path, journal: Journal, *, fs: FileOps | None = None, force_copy: bool = False) -> None:
        self.root = root
        self.journal = journal
        self.fs = fs or FileOps()
        self.force_copy = force_copy  # behave as across volumes (tests, and a documented fallback)
        self._touched: set[str] = set()  # folders whose entries changed: flushed to disk once, at the end
        self._made: set[str] = set()  # destination folders made (or found) by this mover: not made again

    # --- public ------------------------------------------------------------------------------------------------

    def move_all(self, moves: Sequence[tuple[Path | str, Path | str, str]
                                      | tuple[Path | str, Path | str, str, tuple[int, int] | None]]
                 ) -> list[MoveOutcome]:
        """Plan (journal first), then perform each move: (source, destination, expected sha256[, (size, mtime_ns)
        the decision saw]); each path absolute (a Path), or "/"-separated text relative to the root (as the
        runner holds them: no Path made and taken apart again, 80,000 of them at 40,000 files). A source whose
        size or mtime differs from what the decision saw is not moved: its bytes are not the ones that were
        examined. Without the fourth element, the source as it is now."""
        before = self.journal.state()
        first = max(before.planned, default=0) + 1
        planned = []
        for offset, (src, dst, sha, *seen) in enumerate(moves):
            src_rel, dst_rel = self._relative(src), self._relative(dst)
            expected = seen[0] if seen and seen[0] is not None else None
            if expected is None:
                info = self.fs.lstat(self._text(src_rel))
                expected = (info.st_size, info.st_mtime_ns) if info else (-1, None)
            planned.append(PlannedMove(first + offset, src_rel, dst_rel, sha, *expected))
        with self.journal.appending():
            try:
                self.journal.append_plan(planned)
                # the journal as read, with the plan just appended (this process is its one writer): not read again
                state = JournalState({**before.planned, **{m.id: m for m in planned}}, before.targets, before.done,
                                     before.failed)
                return [self._perform(move, state, fresh=True) for move in planned]
            finally:
                self._sync()

    def recover(self) -> list[MoveOutcome]:
        """Finish every move an interrupted pass left pending."""
        state = self.journal.state()
        with self.journal.appending():
            try:
                return [self._perform(move, state) for move in state.pending()]
            finally:
                self._sync()

    def _sync(self) -> None:
        """The folders whose entries changed flushed to disk (the journal is, at the end of ``appending``)."""
        for folder in sorted(self._touched):
            if os.path.isdir(folder):
                self.fs.fsync_dir(Path(folder))
        self._touched.clear()

    def prune_empty_dirs(self, run_dir: Path) -> int:
        """Remove empty folders below ``run_dir`` (never ``run_dir`` itself, never through a symlink)."""
        removed = 0
        for current, dirs, files in os.walk(run_dir, topdown=False, followlinks=False):
            path = Path(current)
            if path == run_dir:
                continue
            try:
                if not any(path.iterdir()):
                    path.rmdir()
                    removed += 1
            except OSError:
                continue
        return removed

    # --- one move ----------------------------------------------------------------------------------------------

    def _perform(self, move: PlannedMove, state: JournalState, *, fresh: bool = False) -> MoveOutcome:
        """One move. ``fresh``: planned by this process just now, so no copy of ours can exist under its
        temporary name (move ids are never reused), and its destination is not looked at first: the hard link
        refuses to replace one, and then the move is performed again with every check (one lstat a move instead of
        three)."""
        # the paths as text, FileOps' calls included (at 40,000 files: a move cost 46 us with two Path objects and
        # three lstats, 28 us without; the runner's move phase 3.4 -> 1.3 s with its own Paths gone too)
        dst_rel = state.destination(move.id)
        src_text, dst_text = self._text(move.src), self._text(dst_rel)
        src_info = self.fs.lstat(src_text)
        dst_info = None if fresh and src_info is not None else self.fs.lstat(dst_text)
        if not fresh:
            temp_text = _temporary(dst_text, move.id)
            if self.fs.lstat(temp_text) is not None:  # our unfinished copy: it never became the destination
                self.fs.unlink(temp_text)
        src, dst = src_text, dst_text
        if src_info is None:
            if dst_info is not None and stat.S_ISREG(dst_info.st_mode) and self.fs.sha256(dst) == move.sha256:
                return self._done(move, dst_rel)  # the move had finished; only its record was missing
            return self._failed(move, dst_rel, f"source {move.src} is gone and {dst_rel} does not hold its bytes")
        if stat.S_ISLNK(src_info.st_mode) or not stat.S_ISREG(src_info.st_mode):
            return self._failed(move, dst_rel, f"{move.src} is a symbolic link or not a regular file: left in place")
        if dst_info is not None:
            if _same_file(src_info, dst_info):  # linked, not yet unlinked: finish
                return self._remove_source(move, src, dst, dst_rel)
            if stat.S_ISREG(dst_info.st_mode) and dst_info.st_size == src_info.st_size and \
                    self.fs.sha256(dst) == move.sha256 == self.fs.sha256(src):
                # a verified copy is in place: remove the source, as the copy path would have
                return self._remove_source(move, src, dst, dst_rel)
            dst_rel = self._free_name(move, dst_rel)
            dst = self._text(dst_rel)
        if move.size_bytes != src_info.st_size or (move.mtime_ns is not None and move.mtime_ns != src_info.st_mtime_ns):
            return self._failed(move, dst_rel, f"{move.src} changed since it was examined: left in place for the next pass")
        folder = os.path.dirname(dst)
        remembered = folder in self._made  # made by an earlier move: it may have been removed since
        self._makedirs(folder)
        if not self.force_copy:
            try:
                try:
                    self.fs.link(src, dst)
                except FileNotFoundError:
                    if not remembered or self.fs.lstat(src) is None:
                        raise
                    self._made.discard(folder)  # the folder went away meanwhile: made again, and linked again
                    self._makedirs(folder)
                    self.fs.link(src, dst)
            except FileExistsError:
                if fresh:  # the destination was not looked at: now it is, with every check
                    return self._perform(move, state)
                return self._perform(move, self.journal.state())  # taken meanwhile: choose again
            except OSError as exc:
                if exc.errno not in NO_LINK_ERRORS:
                    raise MoveError(f"cannot move {move.src} to {dst_rel}: {exc}", path=move.src) from exc
            else:
                self._touched.update((folder, os.path.dirname(src_text)))
                return self._remove_source(move, src, dst, dst_rel)
        return self._copy_then_remove(move, src, dst, dst_rel, _temporary(dst, move.id), state)

    def _remove_source(self, move: PlannedMove, src: str, dst: str, dst_rel: str) -> MoveOutcome:
        """The destination holds the bytes (a hard link or a verified copy): remove the source. If the source cannot
        be removed (open in another program, permission denied), take the destination back instead, so the file
        stays in one place, the run folder, for the next pass."""
        try:
            self.fs.unlink(src)
        except FileNotFoundError:
            pass  # gone meanwhile: the destination holds its bytes
        except OSError as exc:
            try:
                self.fs.unlink(dst)
            except OSError as undo:
                raise MoveError(f"{move.src} could not be removed from the run folder ({exc}) and its copy {dst_rel} "
                                f"could not be taken back ({undo}): the file is in both places; remove the copy "
                                "once the source is free", path=move.src) from exc
            return self._failed(move, dst_rel, f"{move.src} could not be removed from the run folder ({exc.strerror or exc}): "
                                "left in place; it is moved on the next pass once no program holds it")
        return self._done(move, dst_rel)

    def _copy_then_remove(self, move: PlannedMove, src: str, dst: str, dst_rel: str, temp: str,
                          state: JournalState) -> MoveOutcome:
        try:
            self.fs.copy(src, temp)
        except OSError as exc:
            if self.fs.lstat(temp) is not None:
                self.fs.unlink(temp)
            if exc.filename is not None and os.fspath(exc.filename) == src:  # this file's problem, not the volume's
                return self._failed(move, dst_rel, f"{move.src} could not be read ({exc.strerror or exc}): left in place")
            if exc.errno == errno.ENOSPC:
                raise MoveError(f"disk full while copying {move.src} to {dst_rel}: the source is intact; free space "
                                "and run again, the journal finishes the run", path=move.src) from exc
            raise MoveError(f"cannot copy {move.src} to {dst_rel}: {exc}", path=move.src) from exc
        copied = self.fs.sha256(temp)
        if copied != move.sha256:
            self.fs.unlink(temp)
            return self._failed(move, dst_rel, f"{move.src}: the copy's sha256 {copied[:12]}... differs from the "
                                "examined file's; left in place")
        try:
            try:
                self.fs.link(temp, dst)
                self.fs.unlink(temp)
            except OSError as exc:
                if exc.errno not in NO_LINK_ERRORS or isinstance(exc, FileExistsError):
                    raise
                self.fs.rename_no_replace(temp, dst)
        except FileExistsError:  # the destination is taken (by the link or the rename): choose again
            self.fs.unlink(temp)
            return self._perform(move, state)
        self.fs.fsync_dir(os.path.dirname(dst))  # the verified copy is durable under its name before the source goes
        self._touched.add(os.path.dirname(src))
        return self._remove_source(move, src, dst, dst_rel)

    def _free_name(self, move: PlannedMove, dst_rel: str) -> str:
        """A destination name nobody has: "a.png" -> "a (1).png", recorded before use."""
        path = PurePosixPath(dst_rel)
        n = 1
        while True:
            candidate = str(path.with_name(f"{path.stem} ({n}){path.suffix}"))
            if self.fs.lstat(self._text(candidate)) is None:
                self.journal.mark_target(move.id, candidate)  # durable before the file takes that name
                return candidate
            n += 1

    def _done(self, move: PlannedMove, dst_rel: str) -> MoveOutcome:
        self.journal.mark_done(move.id, dst_rel)
        return MoveOutcome(move.id, move.src, dst_rel, True)

    def _failed(self, move: PlannedMove, dst_rel: str, error: str) -> MoveOutcome:
        self.journal.mark_failed(move.id, error)
        return MoveOutcome(move.id, move.src, dst_rel, False, error)

    def _rel(self, path: Path) -> str:
        text, prefix = os.fspath(path), root_prefix(self.root)
        if text.startswith(prefix):  # as text (pathlib's relative_to cost 15 us a path)
            relative = text[len(prefix):].replace(os.sep, "/")
            if PLAIN_PATH.fullmatch(relative):
                return relative
        return path.relative_to(self.root).as_posix()

    def _relative(self, path: Path | str) -> str:
        """A move's path as the journal holds it: "/"-separated, relative to the root. Text is taken as such a path
        already (refused if it would leave the root); a Path as absolute."""
        if not isinstance(path, str):
            return self._rel(path)
        return path if PLAIN_PATH.fullmatch(path) else "/".join(inside_parts(path))

    def _text(self, rel: str) -> str:
        """The OS path of a journal's relative path, joined as text where the path is plain."""
        return plain_text_inside(self.root, rel) or os.fspath(self.root.joinpath(*PurePosixPath(rel).parts))

    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(Path(folder))
            self._made.add(folder)


def _temporary(dst: str, move_id: int) -> str:
    """Where a copy of this move is made before it takes its name: beside the destination, hidden."""
    folder, name = os.path.split(dst)
    return os.path.join(folder, f".{name}.dedup-{move_id}.tmp")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return a.st_ino == b.st_ino and a.st_dev == b.st_dev and a.st_ino != 0
