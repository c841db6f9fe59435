"""Exit codes of every command (as in DESIGN.md), and the one-line message an error ends a command with."""

from __future__ import annotations

import sys

from dedup_engine.errors import DedupError, InputError

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def exit_for(error: DedupError) -> int:
    """Print ``error`` as one line on stderr; a usage error (the input as a whole) exits 2, anything else 1."""
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_USAGE if isinstance(error, InputError) else EXIT_RUN_FAILED
