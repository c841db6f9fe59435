"""When has the instrument finished writing a run? No file changed size or mtime for ``settle_seconds``, as the
File Log Agent judges it, and none is still open for writing (on Windows the instrument's open handle refuses us).

Pure bookkeeping with an injected clock; the watcher feeds it listings.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .runs import RunListing


def open_for_writing(path: Path) -> bool:
    """True when another program holds the file open for writing. Windows: its lock refuses a read-write open.
    POSIX has no mandatory locks, so there size and mtime stability is the whole test."""
    if os.name != "nt":
        return False
    try:
        with open(path, "r+b"):
            return False
    except PermissionError:
        return True
    except OSError:
        return False


@dataclass
class _Seen:
    signature: frozenset[tuple[str, int, int]]
    changed_at: float


@dataclass
class SettleTracker:
    settle_seconds: float
    clock: Callable[[], float] = time.monotonic
    is_open: Callable[[Path], bool] = open_for_writing
    _seen: dict[str, _Seen] = field(default_factory=dict)

    def observe(self, listing: RunListing) -> bool:
        """Record what the run looks like now; True once it has been quiet for settle_seconds."""
        now = self.clock()
        name = listing.run.name
        signature = listing.signature()
        seen = self._seen.get(name)
        if seen is None or seen.signature != signature:
            self._seen[name] = seen = _Seen(signature, now)
        if now - seen.changed_at < self.settle_seconds:
            return False
        if any(self.is_open(listing.run.path.joinpath(*f.path.split("/"))) for f in listing.files):
            seen.changed_at = now  # still being written: wait another settle period
            return False
        return True

    def waiting(self, name: str) -> float | None:
        """Seconds until the run could settle, if it is tracked."""
        seen = self._seen.get(name)
        return None if seen is None else max(0.0, self.settle_seconds - (self.clock() - seen.changed_at))

    def forget(self, name: str) -> None:
        self._seen.pop(name, None)


def settled_by_age(listing: RunListing, settle_seconds: float, now_ns: int | None = None,
                   is_open: Callable[[Path], bool] = open_for_writing) -> bool:
    """For --once: settled if the newest file is older than settle_seconds by the wall clock and none is open."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    newest = max((f.mtime_ns for f in listing.files), default=0)
    if (now_ns - newest) / 1e9 < settle_seconds:
        return False
    return not any(is_open(listing.run.path.joinpath(*f.path.split("/"))) for f in listing.files)
