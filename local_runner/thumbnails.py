"""A pass's report thumbnails, kept in a temporary file rather than in memory until the report is written.

At 40,000 images the thumbnails of every group's images (about 20,000 small JPEGs) would hold about 80 MB of the
runner's memory for the whole pass; here they cost an offset and a length each.
"""

from __future__ import annotations

import marshal
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO


_PREAD = getattr(os, "pread", None)  # POSIX; Windows reads by seeking


class _Indexed(Mapping[str, bytes]):
    """path -> JPEG bytes, each thumbnail found by its (offset, length) in ``_where``: membership, iteration and
    length from the index alone (Mapping's own ``in`` reads the thumbnail: the report asked twice for each)."""

    _where: dict[str, tuple[int, int]]

    def __contains__(self, path: object) -> bool:
        return path in self._where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


class ThumbnailSpill(_Indexed):
    """path -> JPEG bytes, appended to an anonymous temporary file (opened at the first thumbnail, closed and so
    deleted by ``clear``, which the runner calls once the pass's report is written)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._where = {}
        self._end = 0  # where the next thumbnail goes
        self._writing = True  # the file's position is at its end
        self._buffered = False  # thumbnails written to the file object, maybe not yet to the file

    def __setitem__(self, path: str, jpeg: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="image-dedup-thumbnails-")
            self._end = 0
            self._writing = True
        if not self._writing:  # a read moved the position: back to the end (a seek flushes the buffer)
            self._file.seek(self._end)
            self._writing = True
        self._where[path] = (self._end, len(jpeg))
        self._file.write(jpeg)  # appended in the file object's buffer: no system call for most thumbnails
        self._buffered = True
        self._end += len(jpeg)

    def __getitem__(self, path: str) -> bytes:
        offset, length = self._where[path]
        assert self._file is not None
        if _PREAD is not None:  # one system call, and the position stays at the end for the next thumbnail
            self._flush()
            return _PREAD(self._file.fileno(), length, offset)
        self._writing = False
        self._file.seek(offset)
        return self._file.read(length)

    def _flush(self) -> None:
        """The thumbnails held in the file object's buffer handed to the file."""
        if self._buffered and self._file is not None:
            self._file.flush()
            self._buffered = False

    def save(self, path: Path) -> None:
        """Every thumbnail so far, and where each one is, written to the file ``path`` for another process to read
        (``ThumbnailBlob.load``): the JPEGs, then their index, then where the index starts (8 bytes). (Handing the
        index to that process in its arguments took 0.06 s at 40,000 images: the pipe waited for it to start.)"""
        with open(path, "wb") as out:
            if self._file is not None:
                self._flush()
                self._writing = False
                self._file.seek(0)
                shutil.copyfileobj(self._file, out, 1 << 20)
            start = out.tell()
            out.write(marshal.dumps(self._where))  # str -> (int, int): marshal's, for a process of this Python
            out.write(start.to_bytes(8, "little"))

    def clear(self) -> None:
        self._where.clear()
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:
        self.clear()


class ThumbnailBlob(_Indexed):
    """path -> JPEG bytes, held as one bytes object and an index: a ``ThumbnailSpill``'s thumbnails, as the process
    that writes the report reads them."""

    def __init__(self, where: dict[str, tuple[int, int]], data: bytes) -> None:
        self._where = where
        self._data = data

    @classmethod
    def load(cls, path: Path) -> ThumbnailBlob:
        """The thumbnails ``ThumbnailSpill.save`` wrote to ``path``."""
        data = path.read_bytes()
        start = int.from_bytes(data[-8:], "little")
        return cls(marshal.loads(memoryview(data)[start:-8]), data)

    def __getitem__(self, path: str) -> bytes:
        offset, length = self._where[path]
        return self._data[offset : offset + length]
