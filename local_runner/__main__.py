"""``python -m local_runner``: see cli.py."""

from __future__ import annotations

import sys

from dedup_engine.processes import start_early

if __name__ == "__main__" and (len(sys.argv) < 2 or sys.argv[1] not in ("status", "restore", "-h", "--help")):
    start_early()  # the workers' forkserver imports the engine on the other core while this process does

from .cli import main  # noqa: E402

if __name__ == "__main__":
    import gc

    # The collector's default thresholds (700, 10, 10) made this process run 1,670 young and 9 full collections over
    # a 40,000-image run: 1.0 s, 0.34 s of it in the single-core start (a full pass walks every object the imports
    # and the 40,000-entry listing and manifest hold; it found 0-9 objects to free each time). A run makes few
    # reference cycles: collecting every 50,000 allocations, and fully only every 100 middle passes, cost 0.31-0.38 s.
    gc.set_threshold(50_000, 20, 100)
    code = main()
    import threading

    if all(thread.daemon or thread is threading.main_thread() for thread in threading.enumerate()):
        # Done: leave without the interpreter's teardown, which frees the run's objects one by one (0.21 s after the
        # work at 40,000 files, 0.14 s at 5,000). What an exit does outside this process still happens: the atexit
        # handlers (logging's flush and close, multiprocessing's and concurrent.futures' cleanup), then stdout and
        # stderr flushed. (With a thread still running, the ordinary exit waits for it.)
        import atexit
        import os

        try:
            atexit._run_exitfuncs()
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            os._exit(code)  # main's status: an int on every path
    sys.exit(code)
