"""The run's result beside its unique files, ``unique/<run>/<run name>.dedup-result.json``, for the agent to send.

The File Log Agent uploads ``unique/`` only, so without it the data lake holds no record of what was archived and
where (``--result-to-agent``; ``--upload-to`` sends it too, under ``<prefix>/<run>/<its name>``). It never takes a
name that a file of the run has in ``unique/<run>/``: then it is ``<run name>.dedup-result (1).json``, and so on.
A later file of that name is moved beside it under another name by the mover, which never overwrites. Written like
every record: temporary name, fsync, rename; rewritten after each pass and each restore.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from dedup_engine.models import DedupResult

from .layout import Layout
from .records import atomic_write

SUFFIX = ".dedup-result"


def agent_result_path(layout: Layout, result: DedupResult) -> str:
    """Where the result goes, relative to W: the first free name among ``<leaf>.dedup-result[ (n)].json``."""
    folder = PurePosixPath(layout.unique_dir, result.run)
    taken = {o.destination for o in result.files if o.destination}
    leaf = PurePosixPath(result.run).name
    number = 0
    while True:
        name = f"{leaf}{SUFFIX}.json" if number == 0 else f"{leaf}{SUFFIX} ({number}).json"
        candidate = str(folder / name)
        if candidate not in taken:
            return candidate
        number += 1


def leave_result(layout: Layout, result: DedupResult) -> Path:
    """Write ``result`` into unique/<run>/ (created if the run sent nothing there yet); returns its path."""
    path = layout.absolute(agent_result_path(layout, result))
    atomic_write(path, result.model_dump_json(indent=2).encode())
    return path
