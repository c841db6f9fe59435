"""Labels applied in a pool of threads as decisions become final, each call retried; failures kept, never dropped.

A gate can hold the labels back (the manifest's files are still being checked): the calls wait until it opens,
and none is made if the run is abandoned.
"""

from __future__ import annotations

import inspect
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .retries import CallFailed, call_with_retries
from .settings import IoSettings

Label = dict[str, str]


class Labeller:
    def __init__(self, context: Any, settings: IoSettings, *, held: bool = False) -> None:
        self._context = context
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=settings.label_concurrency, thread_name_prefix="lake-label")
        self._jobs: list[tuple[str, Future[None]]] = []
        self._open = threading.Event()
        self._abandoned = False
        if not held:
            self._open.set()
        # labels must not re-trigger pipelines; the development context's add_labels has no such parameter
        self._extra = {"no_propagate": True} if "no_propagate" in inspect.signature(context.add_labels).parameters else {}

    def __enter__(self) -> Labeller:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.abandon()
        self._open.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def submit(self, path: str, pointer: dict[str, Any], labels: list[Label]) -> None:
        self._jobs.append((path, self._pool.submit(self._apply, pointer, labels)))

    def release(self) -> None:
        """Open the gate: held labels are applied now."""
        self._open.set()

    def abandon(self) -> None:
        """No label is applied from now on (the run is given up)."""
        self._abandoned = True
        self._open.set()

    def finish(self) -> tuple[int, dict[str, str]]:
        """Waits for every label; returns how many files were labelled and, per path, why a label failed."""
        self.release()
        failed: dict[str, str] = {}
        for path, job in self._jobs:
            try:
                job.result()
            except CallFailed as failure:
                failed[path] = str(failure)
        return len(self._jobs) - len(failed), failed

    def _apply(self, pointer: dict[str, Any], labels: list[Label]) -> None:
        self._open.wait()
        if self._abandoned:
            return
        call_with_retries(lambda: self._context.add_labels(pointer, labels, **self._extra), "label not applied",
                          self._settings.read_attempts, self._settings.first_delay_s, self._settings.max_delay_s)
