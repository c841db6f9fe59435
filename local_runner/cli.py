"""The command line: ``python -m local_runner WATCH_DIR`` and its sub-commands.

    python -m local_runner F:\\Imaging                    watch forever
    python -m local_runner F:\\Imaging --once --dry-run   plan every settled run, move nothing
    python -m local_runner status F:\\Imaging             runs: processed, pending, failed
    python -m local_runner restore F:\\Imaging RUN [PATH ...]
    python -m local_runner demo                          a generated drop zone, a local S3, one pass

Exit codes: 0 done, 1 a run failed, 2 usage error, 3 an upload failed (--once), 130 interrupted. Only our own errors (DedupError) are caught
and printed as one line ``Type: message``; anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Sequence

from dedup_engine import DedupError, DedupParams, default_workers
from dedup_engine.errors import InputError
from pydantic import ValidationError

from . import logs
from .exits import EXIT_INTERRUPTED, EXIT_USAGE, exit_for
from .outputs import layout_for, records_name_for_log
from .usage import (UsageParser, add_output_names, add_run_selection, check_run_selection, non_negative_int,
                    positive_float, positive_int)

COMMANDS = ("status", "restore", "demo")
log = logging.getLogger("local_runner.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="python -m local_runner",
        description="Watch an instrument drop zone; move unique images to unique/ and proven duplicates to archive/.",
        epilog="Other commands: status W | restore W RUN [PATH ...] | demo. Exit codes: 0 done, 1 a run failed, "
        "2 usage error, 3 an upload failed, 130 interrupted.",
    )
    parser.add_argument("watch_dir", type=Path, help="the drop zone, e.g. F:\\Imaging")
    mode = parser.add_argument_group("mode")
    mode.add_argument("--once", action="store_true", help="process the runs that have settled, then exit")
    mode.add_argument("--dry-run", action="store_true", help="decide and write result.json with planned destinations; move nothing")
    mode.add_argument("--mode", choices=["move", "label"], default="move",
                      help="move (default): decide here, move duplicates to archive/ and the rest to unique/; label: "
                           "write each settled run's dedup-manifest.json into its folder and move nothing (the agent "
                           "uploads the whole run, the pipeline decides and labels in the data platform)")
    engine = parser.add_argument_group("decision (defaults calibrated on real images)")
    defaults = DedupParams()
    engine.add_argument("--method", choices=["hash", "mse", "opencv"], default=defaults.method,
                        help="hash: perceptual hash + pixel proof (default); mse (alias opencv): pixel MSE, same shape "
                             "(slower, and it holds every kept image: for large runs use hash)")
    engine.add_argument("--hash-algorithm", choices=["phash", "dhash", "ahash", "whash"], default=defaults.hash_algorithm)
    engine.add_argument("--hash-size", type=int, default=defaults.hash_size, help="hash side, 4 to 32 (8: 64 bits)")
    engine.add_argument("--max-distance", type=non_negative_int, default=defaults.max_distance,
                        help="hash: also take the nearest phashes within this Hamming distance as candidates (0: "
                             "layout signatures only, the default)")
    engine.add_argument("--max-mse", type=float, default=defaults.max_mse, help="MSE threshold (mse)")
    engine.add_argument("--max-residual", type=float, default=defaults.max_residual,
                        help="pixel proof threshold, grey levels (both methods)")
    engine.add_argument("--max-shift-px", type=non_negative_int, default=defaults.max_shift_px,
                        help=f"largest shift or crop the pixel proof searches, 0 to 16 px ({defaults.max_shift_px})")
    engine.add_argument("--max-pixels", type=positive_int, default=defaults.max_pixels,
                        help=f"images with more pixels are refused before decoding ({defaults.max_pixels:,})")
    engine.add_argument("--keep", choices=["first", "largest", "sharpest"], default=defaults.keep,
                        help="which image of a group stays: first in acquisition order, largest, sharpest")
    engine.add_argument("--workers", type=positive_int, default=None, help=f"processes, this one included (default: the cores it may use, here {default_workers()})")
    watch = parser.add_argument_group("watching")
    add_run_selection(watch)
    watch.add_argument("--polling", action="store_true", help="poll instead of native events (network shares)")
    watch.add_argument("--poll-interval", type=positive_float, default=5.0)
    out = parser.add_argument_group("output folders (inside W)")
    add_output_names(out)
    out.add_argument("--confirm-new-folders", action="store_true",
                     help="switch W to output folder names other than the remembered ones")
    out.add_argument("--result-to-agent", action="store_true",
                     help="also leave the run's result as unique/<run>/<run name>.dedup-result.json, so that the agent "
                          "(and --upload-to) sends the record of what was archived and where (move mode)")
    up = parser.add_argument_group("upload (what the File Log Agent does, for setups without one)")
    up.add_argument("--upload-to", metavar="s3://BUCKET/PREFIX", help="upload unique files and result.json")
    up.add_argument("--s3-endpoint-url", help="S3-compatible endpoint (MinIO, a local moto server)")
    up.add_argument("--s3-max-attempts", type=positive_int, default=6,
                    help="attempts per request, botocore standard retry mode (6); failures are retried next pass")
    people = parser.add_argument_group("logs")
    people.add_argument("--log-file", type=Path, help="rotating log file (default: W/<records-dir>/logs/local_runner.log)")
    people.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    people.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    check_run_selection(parser, args.run_depth, args.include)
    if args.mode == "label":
        moving = [name for name, given in (("--dry-run", args.dry_run), ("--upload-to", args.upload_to),
                                           ("--result-to-agent", args.result_to_agent)) if given]
        if moving:
            parser.error(f"{', '.join(moving)}: only for move mode; --mode label moves, decides and uploads nothing "
                         "(the agent uploads the run folders), so leave this out")


def params_from(args: argparse.Namespace) -> DedupParams:
    return DedupParams(method=args.method, hash_algorithm=args.hash_algorithm, hash_size=args.hash_size,
                       max_distance=args.max_distance, max_mse=args.max_mse, max_residual=args.max_residual,
                       max_shift_px=args.max_shift_px, keep=args.keep, max_pixels=args.max_pixels)


def check_watch_dir(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"watched folder {path} does not exist: check the path (and that the drive is mounted)")
    if not path.is_dir():
        raise InputError(f"watched folder {path} is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"watched folder {path} cannot be read: check the account's permissions")
    return path.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in COMMANDS:
        from . import commands

        return commands.run(args_list[0], args_list[1:])
    parser = build_parser()
    try:
        # a usage error also goes to the log file (a scheduled task has no console)
        args = logs.parse_args_logged(parser, args_list,
                                      check=lambda parsed: check_options(parser, parsed))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    handlers: list[logging.Handler] = []
    try:  # the log file first: a task has no console, so a start-up error must be in the log
        records = records_name_for_log(args.watch_dir, args.records_dir)
        handlers = logs.configure_at_start(args.log_level, args.log_file, args.watch_dir, records)
        params = params_from(args)
        root = check_watch_dir(args.watch_dir)
        layout = layout_for(root, args.unique_dir, args.archive_dir, args.records_dir,
                            confirm=args.confirm_new_folders, remember=True)
        from .service import Service

        service = Service.from_args(layout, params, args)
        return service.run_once() if args.once else service.run_forever()
    except ValidationError as exc:
        first = exc.errors()[0]
        option = "--" + "-".join(str(p) for p in first["loc"]).replace("_", "-")
        message = f"InputError: invalid {option}: {first['msg']}"
        log.error("exit 2: %s", message, extra=logs.FILE_ONLY)
        print(message, file=sys.stderr)
        return EXIT_USAGE
    except DedupError as exc:
        log.error("exit: %s: %s", type(exc).__name__, exc, extra=logs.FILE_ONLY)
        return exit_for(exc)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        logs.remove(handlers)
