"""The worker processes: how they are started, and starting them early.

Light on purpose (nothing heavier than ``multiprocessing`` is imported here), so that a command line can start the
forkserver before it imports the engine: the forkserver then imports the engine's modules for its workers while
this process imports them for itself, on the other core, instead of after it.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

# what each worker needs, imported once by the forkserver (each worker then starts warm, in a few milliseconds)
PRELOAD = ["dedup_engine.engine", "imagehash", "cv2"]
THREAD_LIMITS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def context() -> multiprocessing.context.BaseContext:
    """The start method for the engine's workers."""
    # The workers' numpy must not start a BLAS thread per core each (the thumbnail is a matrix product): the
    # limit has to be in the environment before the forkserver (or spawned child) imports numpy.
    for name in THREAD_LIMITS:
        os.environ.setdefault(name, "1")
    # fork is unsafe once threads exist (the watcher runs some); Windows only has spawn. The forkserver imports
    # the heavy modules once, so each worker starts warm instead of spending ~0.3 s importing.
    if sys.platform == "win32":
        return multiprocessing.get_context("spawn")
    chosen = multiprocessing.get_context("forkserver")
    chosen.set_forkserver_preload(PRELOAD)
    return chosen


def start_early() -> None:
    """Start the forkserver now (POSIX), so that its imports overlap the caller's. It is the one the engine's
    pools use later; a process that never starts a pool only paid for an idle server, stopped at exit."""
    if sys.platform == "win32":
        return
    context()
    from multiprocessing import forkserver

    forkserver.ensure_running()


def single_threaded() -> None:
    """Worker initializer: one process per core already; OpenCV's own thread pool on top only contends."""
    import cv2

    cv2.setNumThreads(1)
