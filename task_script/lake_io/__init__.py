"""Data-lake I/O for the task script: many slow platform calls kept in flight, bounded, retried.

The engine stays pure (bytes in, models out); this package is the adapter between it and the task context:

    settings.py   IoSettings: concurrency, bytes in flight, retry budget (a plain value object)
    retries.py    which failures are worth another try, and the retry loop (exponential backoff, full jitter)
    reader.py     Prefetcher: reads run ahead of the engine in a pool of threads, in order, bytes bounded
    labeller.py   Labeller: labels applied in a pool of threads as decisions become final; failures kept
    trigger.py    the run manifest as a trigger: where its files are in the lake, and the sha256 check (ManifestCheck)
"""

from __future__ import annotations

from .labeller import Labeller
from .reader import Prefetcher, Read, read_file
from .settings import IoSettings
from .trigger import ManifestCheck, locate

__all__ = ["IoSettings", "Labeller", "Prefetcher", "ManifestCheck", "Read", "locate", "read_file"]
