"""Reporters a test hands the runner (module-level, so that the process writing a large pass's report can be
handed them too): each leaves a mark naming the process that called it."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path
from typing import Any

from local_runner.report import write_report


def marking(folder: Path, result: Any, layout: Any, **kwargs: Any) -> Path:
    (folder / f"report-written-by-{os.getpid()}").touch()
    return write_report(folder, result, layout, **kwargs)


def failing_apart(folder: Path, result: Any, layout: Any, **kwargs: Any) -> Path:
    """Fails in a process the runner started, writes the report in the runner's own."""
    if multiprocessing.parent_process() is not None:
        raise RuntimeError("the report process cannot write here")
    return marking(folder, result, layout, **kwargs)


def stuck_apart(folder: Path, result: Any, layout: Any, **kwargs: Any) -> Path:
    """Never returns in a process the runner started; writes the report in the runner's own."""
    if multiprocessing.parent_process() is not None:
        import time

        time.sleep(3600)
    return marking(folder, result, layout, **kwargs)
