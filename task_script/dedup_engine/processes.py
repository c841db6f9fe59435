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


RESULT_PIPE_BYTES = 1 << 20  # Linux's default most for a pipe (/proc/sys/fs/pipe-max-size)
CGROUP = "/sys/fs/cgroup"  # where Linux shows a container's CPU quota


def default_workers() -> int:
    """The cores this process may use: those it is allowed to run on, and no more than a container's CPU quota
    (Docker's ``--cpus``, a Kubernetes limit), which ``os.cpu_count()`` ignores: a task container limited to 2 CPUs
    on a 16-core host would otherwise start 16 processes that share 2 cores, each evicting the others' caches."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpus()
    return max(1, min(cores, quota) if quota else cores)


def cgroup_cpus(root: str = CGROUP) -> int | None:
    """The CPU quota of this process's cgroup, rounded up to whole CPUs (cgroup v2 ``cpu.max``, or v1
    ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``); None without a quota or outside Linux."""
    try:
        with open(os.path.join(root, "cpu.max")) as handle:
            quota, period = handle.read().split()[:2]
    except (OSError, ValueError):
        try:
            with open(os.path.join(root, "cpu", "cpu.cfs_quota_us")) as handle:
                quota = handle.read().strip()
            with open(os.path.join(root, "cpu", "cpu.cfs_period_us")) as handle:
                period = handle.read().strip()
        except OSError:
            return None
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max": no quota
        return None
    if quota_us <= 0 or period_us <= 0:  # v1's -1: no quota
        return None
    return max(1, -(-quota_us // period_us))


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


def widen_result_pipe(pool: object, size: int = RESULT_PIPE_BYTES) -> int | None:
    """Give a ``ProcessPoolExecutor``'s result pipe ``size`` bytes (Linux; the default is 64 KiB), or as many as
    the system allows; the pipe's new size, or None where it cannot be changed.

    A worker hands each finished chunk (350-460 KB of fingerprints for 16 images; 32 images since, about 900 KB)
    to a thread of the deciding process, which reads it only when it gets the interpreter lock from the thread that
    decides. Through 64 KiB the worker waited for that handover six times a chunk: 7 % of its time at 40,000 images
    (py-spy), 4 % with 1 MiB, and runs took 3-6 % less (alternating runs at 5,000 and 40,000 images)."""
    if not sys.platform.startswith("linux"):
        return None
    reader = getattr(getattr(pool, "_result_queue", None), "_reader", None)  # CPython's SimpleQueue of the pool
    if reader is None:
        return None
    import fcntl

    set_size, get_size = getattr(fcntl, "F_SETPIPE_SZ", 1031), getattr(fcntl, "F_GETPIPE_SZ", 1032)
    try:
        with open("/proc/sys/fs/pipe-max-size") as handle:
            size = min(size, int(handle.read()))
    except (OSError, ValueError):
        pass
    try:
        fcntl.fcntl(reader.fileno(), set_size, size)
        return int(fcntl.fcntl(reader.fileno(), get_size))
    except OSError:  # beyond a user's pipe quota (pipe-user-pages-soft): the default size works, more slowly
        return None
