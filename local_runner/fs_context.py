"""A file-system stand-in for the TetraScience task context, so the local runner calls the task function as is.

It offers the part of ``ts_sdk.task.Context`` the task script uses: ``read_file`` (forms body, file_obj,
download), ``write_file`` (IDS, PROCESSED, TMP only, as on the platform), ``add_labels``, ``get_logger``,
``raise_fatal_error`` and ``pipeline_config``. File pointers name a file by its path relative to the watched folder.
One addition, ``byte_source``, returns a picklable reader so the engine's worker processes read files themselves;
another, ``keep_result``, hands the runner the result the task writes as an object (parsing its JSON back cost a
second at 40,000 files).
Written files and labels are kept in memory for the runner to collect; nothing here moves or changes inputs.
"""

from __future__ import annotations

import io
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from dedup_engine.errors import InputError
from dedup_engine.models import PLAIN_PATH

WRITABLE_CATEGORIES = frozenset({"IDS", "PROCESSED", "TMP"})


@dataclass(frozen=True)
class FileReader:
    """Reads one file's bytes; picklable, so it runs in a worker process. Refuses symlinks."""

    path: str

    def __call__(self) -> bytes:
        flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise OSError(f"{self.path} is not a regular file")
            return read_to_end(fd, info.st_size)
        finally:
            os.close(fd)


READ_BLOCK = 1 << 20


def read_to_end(fd: int, size: int) -> bytes:
    """Every byte of an open file, as a buffered ``read()`` gives them, in one system call for a file of ``size``
    bytes: asked for one byte more, a read that returns exactly ``size`` has met the end. A file that grew, or a
    short read (a signal, a network file system), is read on to the end. (A buffered read sizes its buffer one
    byte over, reads again to meet the end, and then shrinks the buffer, which copied it: a 184 KB frame cost
    57-71 us that way and 35-45 us this way, read with the caches as cold as a run leaves them.)"""
    data = os.read(fd, size + 1)
    if len(data) == size:
        return data
    parts = [data]
    while block := os.read(fd, READ_BLOCK):
        parts.append(block)
    return b"".join(parts)


@dataclass
class WrittenFile:
    content: bytes
    file_name: str
    file_category: str
    labels: list[dict[str, str]]


@dataclass
class FileSystemContext:
    root: Path
    pipeline_config: Mapping[str, str] = field(default_factory=dict)
    workers: int | None = None
    progress: Any = None
    previews: Any = None  # (path, JPEG bytes) -> None: thumbnails for the report of a run's groups
    keep_result: Any = None  # (DedupResult) -> None: the task's result as an object, before it writes its JSON
    applies_labels: bool = False  # the task labels no file here: on a disk the result is the record (add_labels
    # still works, for a caller that wants it)
    written: dict[str, WrittenFile] = field(default_factory=dict)
    labels: dict[str, dict[str, str]] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("local_runner.task"))
    linked_dirs: frozenset[str] = field(
        default=frozenset(), metadata={"doc": "top-level folders that may be links to another volume (unique/)"})
    _folders: dict[tuple[str, ...], Path] = field(default_factory=dict, init=False, repr=False)  # checked, by parts

    def pointer(self, relative: str) -> dict[str, Any]:
        return {"type": "localfile", "bucket": None, "fileKey": relative, "fileId": None, "version": None}

    def _path(self, file: Mapping[str, Any]) -> Path:
        key = file.get("fileKey") if isinstance(file, Mapping) else None
        if not isinstance(key, str) or not key:
            raise InputError(f"file pointer {file!r} has no fileKey")
        parts = tuple(part for part in key.split("/") if part not in ("", "."))  # as PurePosixPath(key).parts
        if key.startswith("/") or ".." in parts or not parts or "\\" in key:
            raise InputError(f"file pointer {key!r} points outside the watched folder {self.root}")
        folder = self._folders.get(parts[:-1])
        if folder is None:  # each folder checked once: a run's thousands of files share one or a few
            folder = self.root
            for depth, part in enumerate(parts[:-1]):  # the last one is opened with O_NOFOLLOW by FileReader
                folder = folder / part
                if folder.is_symlink() and not (depth == 0 and part in self.linked_dirs):
                    raise InputError(f"file pointer {key!r} goes through the symbolic link {part!r}, which may lead "
                                     f"out of the watched folder {self.root}: not read")
            self._folders[parts[:-1]] = folder
        return folder / parts[-1]

    def read_file(self, file: Mapping[str, Any], form: str = "body") -> dict[str, Any]:
        path = self._path(file)
        written = self.written.get(file["fileKey"])
        body = written.content if written is not None else FileReader(str(path))()
        result: dict[str, Any] = {"body": body, "file": dict(file), "metadata": {}, "custom_metadata": {}}
        if form == "body":
            return result
        if form == "file_obj":
            result["file_obj"] = io.BytesIO(body)
            return result
        if form == "download":
            result["download"] = str(path)
            return result
        raise InputError(f"invalid read_file form {form!r}")

    def byte_source(self, file: Mapping[str, Any]) -> FileReader:
        key = file.get("fileKey") if isinstance(file, Mapping) else None
        if isinstance(key, str) and PLAIN_PATH.fullmatch(key):  # no "", ".", ".." part, no drive, no backslash
            # joined as text under its folder, which _path checked once and holds (the engine takes 40,000 of these
            # in its deciding thread: 4 -> 2 us each)
            parts = key.split("/")
            folder = self._folders.get(tuple(parts[:-1])) or self._path(file).parent
            return FileReader(os.path.join(folder, parts[-1]))
        return FileReader(str(self._path(file)))

    def write_file(
        self,
        content: str | bytes,
        file_name: str,
        file_category: str,
        ids: str | None = None,
        custom_metadata: Mapping[str, str] | None = None,
        custom_tags: list[str] | None = None,
        source_type: str | None = None,
        labels: list[dict[str, str]] | tuple[()] = (),
    ) -> dict[str, Any]:
        if file_category not in WRITABLE_CATEGORIES:
            raise InputError(f"file category {file_category!r} cannot be written (only {sorted(WRITABLE_CATEGORIES)})")
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        self.written[file_name] = WrittenFile(data, file_name, file_category, list(labels))
        return self.pointer(file_name)

    def add_labels(self, file: Mapping[str, Any], labels: list[dict[str, str]], no_propagate: bool = False) -> dict:
        key = str(file.get("fileKey"))
        for label in labels:
            self.labels.setdefault(key, {})[label["name"]] = label["value"]
        return {}

    def get_labels(self, file: Mapping[str, Any]) -> list[dict[str, str]]:
        return [{"name": k, "value": v} for k, v in self.labels.get(str(file.get("fileKey")), {}).items()]

    def get_logger(self) -> logging.Logger:
        return self.logger

    def raise_fatal_error(self, message: str) -> None:
        raise InputError(message)
