"""Readable logs: one line per event on the console, and a rotating log file (a scheduled task has no console)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
DATE = "%Y-%m-%d %H:%M:%S"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5


def configure(level: str = "INFO", log_file: Path | None = None, *, console: bool = True) -> list[logging.Handler]:
    """Set up the ``local_runner`` and ``dedup_engine`` loggers; returns the handlers added (for tests to remove)."""
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8", delay=True
        ))
    formatter = logging.Formatter(FORMAT, DATE)
    for name in ("local_runner", "dedup_engine"):
        logger = logging.getLogger(name)
        logger.setLevel(level.upper())
        for handler in handlers:
            handler.setFormatter(formatter)
            logger.addHandler(handler)
        logger.propagate = False
    return handlers


def remove(handlers: list[logging.Handler]) -> None:
    for name in ("local_runner", "dedup_engine"):
        logger = logging.getLogger(name)
        for handler in handlers:
            logger.removeHandler(handler)
        if not logger.handlers:
            logger.propagate = True  # back to the default, for whoever configures logging next
    for handler in handlers:
        handler.close()
