"""The dedup engine: pure functions from image bytes to a DedupResult. No file system, no network, no globals.

    result = dedup("run-12", [("img_0001.png", data), ...], DedupParams())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .processes import default_workers

if TYPE_CHECKING:
    from .engine import __version__, decide, dedup
    from .errors import DedupError, ImageError, InputError
    from .fingerprints import ByteSource, Source
    from .models import DedupParams, DedupResult, FileOutcome, FilePointer, FolderManifest, ManifestFile

# where each public name lives: imported at first use, so that importing ``dedup_engine.processes`` alone (to
# start the workers' forkserver early, see processes.py) does not import OpenCV, numpy and pydantic first
_HOMES = {
    "__version__": "engine", "decide": "engine", "dedup": "engine",
    "DedupError": "errors", "ImageError": "errors", "InputError": "errors",
    "ByteSource": "fingerprints", "Source": "fingerprints",
    "DedupParams": "models", "DedupResult": "models", "FileOutcome": "models", "FilePointer": "models",
    "FolderManifest": "models", "ManifestFile": "models",
}


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'dedup_engine' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


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
