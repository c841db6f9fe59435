"""Exit codes of every command (DESIGN.md's, plus 3 for a failed upload), and the one-line message an error ends a command with."""

from __future__ import annotations

import sys

from dedup_engine.errors import DedupError, InputError

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_UPLOAD_FAILED = 3  # --once: every run decided and moved, but an upload failed (retried on the next pass)


def exit_for(error: DedupError) -> int:
    """Print ``error`` as one line on stderr; a usage error (the input as a whole) exits 2, anything else 1."""
    print(f"{type(error).__name__}: {error}", file=sys.stderr)
    return EXIT_USAGE if isinstance(error, InputError) else EXIT_RUN_FAILED
