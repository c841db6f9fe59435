"""Readable logs: one line per event on the console, and a rotating log file (a scheduled task has no console)."""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import logging.handlers
import os
import platform
import sys
from pathlib import Path, PurePath, PureWindowsPath
from typing import Callable, Mapping, Sequence

FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
DATE = "%Y-%m-%d %H:%M:%S"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 5


def configure(level: str = "INFO", log_file: Path | None = None, *, console: bool = True) -> list[logging.Handler]:
    """Set up the ``local_runner`` and ``dedup_engine`` loggers; returns the handlers added (for tests to remove)."""
    handlers: list[logging.Handler] = []
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].addFilter(lambda record: not getattr(record, "file_only", False))
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


# --- where a start-up error goes -------------------------------------------------------------------------------
# A scheduled task has no console: an error at start (a drive or share not mounted yet, a bad argument) must reach a
# file a person will look at. The log file is used when its folder exists or can be made without creating the
# watched folder itself; otherwise the fallback below, whose place the README names.

LOG_NAME = "local_runner.log"
FILE_ONLY = {"file_only": True}  # extra= for a line the console already shows (the one-line exit message)


def fallback_log_file(system: str | None = None, environ: Mapping[str, str] | None = None) -> PurePath:
    """%ProgramData%\\image-dedup\\logs\\local_runner.log on Windows (the installer makes that folder), else
    $XDG_STATE_HOME/image-dedup/logs/local_runner.log (default ~/.local/state)."""
    system = platform.system() if system is None else system
    environ = os.environ if environ is None else environ
    if system == "Windows":
        return PureWindowsPath(environ.get("ProgramData") or r"C:\ProgramData", "image-dedup", "logs", LOG_NAME)
    state = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "state")
    return Path(state, "image-dedup", "logs", LOG_NAME)


def _unusable(log_file: Path, watch_dir: Path | None, *, create: bool) -> str | None:
    """Why ``log_file`` cannot be written (None if it can), making its folder when ``create`` allows."""
    folder = log_file.parent
    if watch_dir is not None and _inside(log_file, watch_dir) and not watch_dir.is_dir():
        return f"the watched folder {watch_dir} is not there (drive or share not mounted?)"
    if not folder.is_dir():
        if not create:
            return f"its folder {folder} does not exist"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return f"its folder cannot be made: {exc}"
    if not os.access(folder, os.W_OK) or (log_file.exists() and not os.access(log_file, os.W_OK)):
        return "this account may not write it"
    return None


def _inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))


def choose_log_file(wanted: Path, watch_dir: Path | None = None, *, create: bool = True) -> tuple[Path | None, str | None]:
    """The file to log to, and why ``wanted`` was not used: ``wanted`` when usable, else the fallback (else None)."""
    reason = _unusable(wanted, watch_dir, create=create)
    if reason is None:
        return wanted, None
    fallback = Path(fallback_log_file())
    if _unusable(fallback, None, create=True) is None:
        return fallback, f"cannot write the log file {wanted}: {reason}; logging to {fallback}"
    return None, f"cannot write the log file {wanted}: {reason}, nor the fallback {fallback}; logging to stderr only"


def configure_at_start(level: str, log_file: Path | None, watch_dir: Path, records_dir: str) -> list[logging.Handler]:
    """``configure`` for the watcher, before anything is checked: the log file (default W/<records>/logs/...)
    or, when it cannot be written, the fallback, with a warning that says why."""
    wanted = log_file or watch_dir / records_dir / "logs" / LOG_NAME
    chosen, reason = choose_log_file(wanted, watch_dir)
    handlers = configure(level, chosen)
    if reason:
        logging.getLogger("local_runner.logs").warning(reason, extra=FILE_ONLY)
    return handlers


def parse_args_logged(parser: argparse.ArgumentParser, argv: Sequence[str],
                      check: Callable[[argparse.Namespace], None] | None = None) -> argparse.Namespace:
    """``parser.parse_args`` (then ``check``, which may call ``parser.error``); a usage error is also written to the
    --log-file given (if its folder exists), else to the fallback log, before argparse's exit."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            args = parser.parse_args(argv)
            if check is not None:
                check(args)
            return args
    except SystemExit as exc:
        if exc.code:
            record_start_error(captured.getvalue().strip(), _log_file_argument(argv))
        raise
    finally:
        sys.stderr.write(captured.getvalue())


def record_start_error(message: str, log_file: Path | None) -> Path | None:
    """Append ``message`` to ``log_file`` (not creating folders) or the fallback; returns the file written, if any."""
    chosen, reason = choose_log_file(log_file or Path(fallback_log_file()), create=log_file is None)
    if chosen is None:
        return None
    handler = logging.handlers.RotatingFileHandler(chosen, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT, DATE))
    try:
        for line in ([reason] if reason else []) + [f"exit 2, usage error: {' '.join(message.split())}"]:
            handler.emit(logging.LogRecord("local_runner.cli", logging.ERROR, __file__, 0, line, None, None))
    finally:
        handler.close()
    return chosen


def _log_file_argument(argv: Sequence[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--log-file" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--log-file="):
            return Path(arg.split("=", 1)[1])
    return None
