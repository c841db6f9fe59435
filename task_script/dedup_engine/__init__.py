"""The dedup engine: pure functions from image bytes to a DedupResult. No file system, no network, no globals.

    result = dedup("run-12", [("img_0001.png", data), ...], DedupParams())
"""

from __future__ import annotations

from .engine import __version__, decide, dedup, default_workers
from .errors import DedupError, ImageError, InputError
from .fingerprints import ByteSource, Source
from .models import DedupParams, DedupResult, FileOutcome, FilePointer, FolderManifest, ManifestFile

__all__ = [
    "ByteSource",
    "DedupError",
    "DedupParams",
    "DedupResult",
    "FileOutcome",
    "FilePointer",
    "FolderManifest",
    "ImageError",
    "InputError",
    "ManifestFile",
    "Source",
    "__version__",
    "decide",
    "dedup",
    "default_workers",
]
