"""Command-line parsing that ends a usage error with one line and exit code 2, and the value checks it needs.

argparse prints the whole usage block before its error; a scheduled task's log then holds a dozen lines for one
mistake. ``UsageParser`` prints ``prog: what is wrong (see --help)`` and exits 2. The type functions refuse a value
with a sentence saying what is allowed, which argparse puts in that one line.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable, NoReturn, Sequence

from .exits import EXIT_USAGE


class UsageParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see --help)\n")


def _checked(kind: type[int] | type[float], ok: Callable[[float], bool], what: str) -> Callable[[str], Any]:
    """An argparse type: ``text`` as ``kind``, refused with ``text what`` unless ``ok``."""
    def parse(text: str) -> int | float:
        value = _number(text, kind)
        if not ok(value):
            raise argparse.ArgumentTypeError(f"{text} {what}")
        return value
    return parse


non_negative_float = _checked(float, lambda v: v >= 0, "is negative: give 0 or more")
positive_float = _checked(float, lambda v: v > 0, "must be more than 0")
positive_int = _checked(int, lambda v: v >= 1, "must be at least 1")
non_negative_int = _checked(int, lambda v: v >= 0, "must be 0 or more")


def _number(text: str, kind: type[int] | type[float]) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if value != value:  # NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def add_output_names(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--unique-dir, --archive-dir, --records-dir: default None, i.e. the names W remembers (outputs.py)."""
    for option, default in (("--unique-dir", "unique"), ("--archive-dir", "archive"), ("--records-dir", ".dedup")):
        parser.add_argument(option, default=None, metavar="NAME",
                            help=f"a folder name inside W (default: the one W uses, first {default})")


def add_run_selection(parser: argparse.ArgumentParser) -> None:
    """--run-depth, --include and --settle-seconds, shared by the runner and ``status``."""
    parser.add_argument("--run-depth", type=int, choices=(1, 2), default=1,
                        help="run folders are W/<run> (1) or W/<project>/<run> (2, production)")
    parser.add_argument("--include", action="append", default=[], metavar="GLOB",
                        help="only project folders matching GLOB (needs --run-depth 2); repeatable")
    parser.add_argument("--settle-seconds", type=non_negative_float, default=30.0,
                        help="quiet time before a run counts as written (30)")


def check_run_selection(parser: argparse.ArgumentParser, depth: int, include: Sequence[str]) -> None:
    if include and depth < 2:
        parser.error("--include filters project folders, which exist only with --run-depth 2")
