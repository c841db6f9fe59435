"""Run folders under a watched folder, and the files of one run. Never follows symlinks.

A run folder sits exactly ``depth`` levels below the watched folder (production: ``F:\\Imaging\\<project>\\<run>``,
depth 2) and holds at least one file. The tool's own output folders are never runs. A run's name is its path
relative to the watched folder with "/" separators (``ProjA/run-12``).

Every entry of a run folder is either taken as input or *skipped* with a reason: symbolic links and junctions,
devices and other special files, temporary files (``~$x``, ``.part``, ...), system files (``Thumbs.db``...) and
hidden files (a name, or a folder on its path, starting with ``.``: on macOS ``._x.png`` is metadata that looks
like an image), and the run's own ``dedup-manifest.json`` (written by the label-only mode). Skipped entries stay where they are and get ``status: skipped`` in the result.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable, Sequence

SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
IGNORED_PATTERNS = ("~$*", "*.tmp", "*.part", "*.partial", "*.crdownload", "*.~*")
_IGNORED = re.compile("|".join(f"(?P<p{i}>{fnmatch.translate(p)})" for i, p in enumerate(IGNORED_PATTERNS)))  # one
# match per name instead of one fnmatch per pattern (a 40,000-file run is listed at least once per pass)
RUN_MANIFEST = "dedup-manifest.json"  # written into a run folder by the label-only mode (label_mode.py)
RUN_MANIFEST_REASON = "the runner's own run manifest (label-only mode): not input, left in place"


@dataclass(frozen=True)
class RunRef:
    name: str
    path: Path


@dataclass(frozen=True)
class RunFile:
    path: str  # relative to the run folder, "/" separators
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class RunListing:
    run: RunRef
    files: tuple[RunFile, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why): not taken as input, left where they are
    errors: tuple[tuple[str, str], ...] = ()  # (path, why): sub-folders that cannot be listed

    def signature(self) -> frozenset[tuple[str, int, int]]:
        return frozenset((f.path, f.size, f.mtime_ns) for f in self.files)


def skip_reason(name: str) -> str | None:
    """Why a regular file of this name is not taken as input, or None if it is."""
    lower = name.lower()
    if lower in SYSTEM_NAMES:
        return "system file: not read, left in place"
    matched = _IGNORED.match(lower)
    if matched is not None:
        return f"temporary file ({IGNORED_PATTERNS[int(matched.lastgroup[1:])]}): not read, left in place"
    if lower.startswith("."):
        return "hidden file (name starts with '.'): not read, left in place"
    return None


def is_ignored(name: str) -> bool:
    return skip_reason(name) is not None


def discover_runs(
    root: Path, *, depth: int = 1, include: Sequence[str] = (), exclude_dirs: Collection[str] = ()
) -> list[RunRef]:
    """Run folders at ``depth`` below ``root`` that hold at least one file, in name order."""
    if depth < 1:
        raise ValueError("run depth must be at least 1")
    found: list[RunRef] = []

    def walk(folder: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
                continue
            if not parts and entry.name in exclude_dirs:
                continue
            rel = (*parts, entry.name)
            if len(rel) < depth:
                if not included(rel, include):
                    continue
                walk(Path(entry.path), rel)
            elif holds_a_file(Path(entry.path)):
                found.append(RunRef("/".join(rel), Path(entry.path)))

    walk(root, ())
    return found


def included(parts: Sequence[str], include: Sequence[str]) -> bool:
    """Whether the project folders above a run (every leading part but the run's own) match ``include`` (globs,
    each tried on the path so far: "ProjA*" matches ProjA and ProjA/sub); no globs includes everything."""
    return not include or all(any(fnmatch.fnmatch("/".join(parts[:k]), g) for g in include)
                              for k in range(1, len(parts) + 1))


def with_known_runs(root: Path, runs: Sequence[RunRef], known: Iterable[str], include: Sequence[str] = ()
                    ) -> list[RunRef]:
    """``runs`` plus the folders of runs processed before (``known`` names) that still exist and that ``include``
    selects (as ``discover_runs`` does): such a folder may hold only entries that are not input (a Thumbs.db made
    later), which are recorded too."""
    names = {r.name for r in runs}
    extra = [RunRef(name, root.joinpath(*name.split("/"))) for name in known
             if name not in names and included(name.split("/")[:-1], include)]
    return sorted([*runs, *(r for r in extra if r.path.is_dir() and not r.path.is_symlink())], key=lambda r: r.name)


def run_for_path(root: Path, path: Path, depth: int) -> str | None:
    """The run a path inside the watched folder belongs to, or None (too shallow, or outside)."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    if len(parts) <= depth - 1 or len(parts) < depth:
        return None
    return "/".join(parts[:depth])


def list_run_files(run: RunRef) -> RunListing:
    files: list[RunFile] = []
    skipped: list[tuple[str, str]] = []
    errors: list[tuple[str, str]] = []

    def walk(folder: str, prefix: str, hidden: bool) -> None:
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            errors.append((prefix.rstrip("/") or ".", f"cannot list the folder: {exc.strerror or exc}"))
            return
        for entry in entries:
            rel = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed while listing
            if stat.S_ISLNK(info.st_mode) or _is_junction(entry):
                skipped.append((rel, "symbolic link or junction: not followed, left in place"))
            elif stat.S_ISDIR(info.st_mode):
                walk(entry.path, rel + "/", hidden or entry.name.startswith("."))
            elif not stat.S_ISREG(info.st_mode):
                skipped.append((rel, "not a regular file (device, pipe or socket): left in place"))
            elif not prefix and entry.name == RUN_MANIFEST:
                skipped.append((rel, RUN_MANIFEST_REASON))
            elif (why := skip_reason(entry.name)) is not None:
                skipped.append((rel, why))
            elif hidden:
                skipped.append((rel, "in a hidden folder (name starts with '.'): not read, left in place"))
            else:
                files.append(RunFile(rel, info.st_size, info.st_mtime_ns))

    walk(str(run.path), "", False)
    files.sort(key=lambda f: f.path)
    return RunListing(run, tuple(files), tuple(sorted(skipped)), tuple(sorted(errors)))


def _is_junction(entry: os.DirEntry) -> bool:
    """A Windows directory junction (Python 3.12+ tells; older ones report it as a plain folder)."""
    is_junction = getattr(entry, "is_junction", None)
    return bool(is_junction and is_junction())


def holds_a_file(folder: Path) -> bool:
    stack = [folder]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_file(follow_symlinks=False) and not is_ignored(entry.name):
                return True
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return False
