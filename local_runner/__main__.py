"""``python -m local_runner``: see cli.py."""

from __future__ import annotations

import sys

from dedup_engine.processes import start_early

if __name__ == "__main__" and (len(sys.argv) < 2 or sys.argv[1] not in ("status", "restore", "-h", "--help")):
    start_early()  # the workers' forkserver imports the engine on the other core while this process does

from .cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
