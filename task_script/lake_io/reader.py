"""Reads from the data lake, prefetched by a pool of threads, handed over in order, with the bytes bounded.

The engine pulls files in natural path order. The prefetcher keeps up to ``4 x read_concurrency`` reads ahead of
it, fewer when their bytes (the manifest's size where it gives one, else the largest file seen so far) would pass
``max_mb_in_flight``; at least one read is always in flight. A file that cannot be read after its retries is
handed over as :class:`Unreadable`, a source the engine records as that file's error, with the reason.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from .retries import CallFailed, call_with_retries
from .settings import IoSettings

Pointer = dict[str, Any]
FILE_ID_METADATA = "ts_file_id"  # ts-sdk's FIELDS["FILE_ID"]: the file id the platform keeps in S3 metadata
FIRST_ESTIMATE = 8 * 2**20  # bytes reserved for a read of unknown size until a size has been seen
AHEAD_PER_THREAD = 4


@dataclass(frozen=True)
class Unreadable:
    """A source that could not be read: the engine calls it, gets OSError and records the reason. Picklable."""

    reason: str

    def __call__(self) -> bytes:
        raise OSError(self.reason)


@dataclass(frozen=True)
class Read:
    path: str
    pointer: Pointer  # as read: the concrete version, and the file id from the object's metadata when it had none
    data: bytes | None
    failure: CallFailed | None = None

    @property
    def source(self) -> bytes | Unreadable:
        return self.data if self.data is not None else Unreadable(str(self.failure))


def read_file(context: Any, path: str, pointer: Pointer, settings: IoSettings) -> Read:
    """One file's bytes through ``context.read_file``, retried; never raises."""
    try:
        result = call_with_retries(lambda: context.read_file(pointer, form="body"), "could not be read from the data lake",
                                   settings.read_attempts, settings.first_delay_s, settings.max_delay_s)
    except CallFailed as failure:
        return Read(path, pointer, None, failure)
    return Read(path, _as_read(pointer, result), bytes(result["body"]))


def _as_read(pointer: Pointer, result: dict[str, Any]) -> Pointer:
    read = dict(pointer)
    version = (result.get("file") or {}).get("version")
    if version and not read.get("version"):
        read["version"] = version
    file_id = (result.get("metadata") or {}).get(FILE_ID_METADATA)
    if file_id and not read.get("fileId"):
        read["fileId"] = file_id  # add_labels then needs no S3 HEAD to find it
    return read


class Prefetcher:
    """``with Prefetcher(read, settings) as p: for r in p.stream(items): ...``; the threads end with the block."""

    def __init__(self, read: Callable[[str, Pointer], Read], settings: IoSettings) -> None:
        self._read = read
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=settings.read_concurrency, thread_name_prefix="lake-read")
        self.peak_bytes_reserved = 0

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def stream(self, items: Iterable[tuple[str, Pointer, int | None]]) -> Iterator[Read]:
        """Reads of ``(path, pointer, size or None)``, in the order given."""
        budget = self._settings.max_bytes_in_flight
        ahead = AHEAD_PER_THREAD * self._settings.read_concurrency
        estimate = FIRST_ESTIMATE
        window: deque[tuple[Future[Read], int]] = deque()
        reserved = 0
        pending = iter(items)
        following = next(pending, None)
        while following is not None or window:
            while following is not None and len(window) < ahead:
                path, pointer, size = following
                need = size if size is not None else estimate
                if window and reserved + need > budget:
                    break
                window.append((self._pool.submit(self._read, path, pointer), need))
                reserved += need
                self.peak_bytes_reserved = max(self.peak_bytes_reserved, reserved)
                following = next(pending, None)
            future, need = window.popleft()
            read = future.result()
            reserved -= need
            if read.data is not None and len(read.data) > estimate:
                estimate = len(read.data)
            yield read
