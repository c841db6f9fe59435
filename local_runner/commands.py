"""Sub-commands for people: ``status``, ``restore`` and ``demo``.

    python -m local_runner status W [--json]
    python -m local_runner restore W RUN [PATH ...] [--dry-run]
    python -m local_runner demo [--dir D] [--total-images N] [--similar-images M]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Sequence

from dedup_engine import DedupError
from dedup_engine.errors import InputError

from . import logs
from .agent_result import agent_result_path, leave_result
from .layout import Layout
from .records import DONE_STATUSES, RunRecords, recorded_runs
from .runs import discover_runs, list_run_files, with_known_runs
from .settle import settled_by_age

from .exits import EXIT_OK, EXIT_RUN_FAILED, exit_for
from .outputs import layout_for
from .usage import UsageParser, add_output_names, add_run_selection, check_run_selection, non_negative_int, positive_int

log = logging.getLogger("local_runner.commands")


def run(command: str, argv: Sequence[str]) -> int:
    handler = {"status": status_main, "restore": restore_main, "demo": demo_main}[command]
    try:
        return handler(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    except DedupError as exc:
        return exit_for(exc)


def _layout_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("watch_dir", type=Path, help="the drop zone, e.g. F:\\Imaging")
    add_output_names(parser)


def _layout(args: argparse.Namespace) -> Layout:
    from .cli import check_watch_dir

    return layout_for(check_watch_dir(args.watch_dir), args.unique_dir, args.archive_dir, args.records_dir)


# --- status ----------------------------------------------------------------------------------------------------


@dataclass
class RunStatusLine:
    run: str
    status: str  # processed | label-only | pending | failed | interrupted | dry-run | new
    files_waiting: int = 0
    total: int = 0
    unique: int = 0
    duplicate: int = 0
    error: int = 0
    passthrough: int = 0
    skipped: int = 0
    restored: int = 0
    uploads_failed: int = 0
    upload: str = ""
    updated_at: str = ""
    detail: str = ""


def collect_status(layout: Layout, *, depth: int = 1, include: Sequence[str] = (),
                   settle_seconds: float = 30.0) -> list[RunStatusLine]:
    lines: dict[str, RunStatusLine] = {}
    found = discover_runs(layout.root, depth=depth, include=include, exclude_dirs=layout.output_names)
    recorded = list(recorded_runs(layout.runs_records_root()))
    for ref in with_known_runs(layout.root, found, [state.run for _, state in recorded], include):
        listing = list_run_files(ref)
        state = RunRecords(layout.records(ref.name)).read_state()
        decided = state.decided if state is not None else (lambda *a: False)
        waiting = [f for f in listing.files if not decided(f.path, f.size, f.mtime_ns)] + \
            [r for r in (*listing.skipped, *listing.errors) if not decided(r[0])]
        settled = settled_by_age(listing, settle_seconds)
        line = _line_from_state(ref.name, state)
        line.files_waiting = len(waiting)
        if state is None:
            line.status = "pending" if not settled else "new"
            line.detail = "still being written" if not settled else "settled, not processed yet"
        elif state.status in DONE_STATUSES and waiting:
            line.status = "pending"
            line.detail = f"{len(waiting)} new files since the last pass"
        lines[ref.name] = line
    for _, state in recorded:
        if state.run not in lines:
            lines[state.run] = _line_from_state(state.run, state)  # run folder emptied by its moves
    return [lines[name] for name in sorted(lines)]


def _line_from_state(run: str, state) -> RunStatusLine:  # type: ignore[no-untyped-def]
    line = RunStatusLine(run=run, status="new")
    if state is None:
        return line
    c = state.counts
    line.total, line.unique, line.duplicate, line.error, line.passthrough = c.total, c.unique, c.duplicate, c.error, c.passthrough
    line.skipped, line.restored = c.skipped, max(c.restored, len(state.restored))
    line.updated_at = state.updated_at.astimezone().strftime("%Y-%m-%d %H:%M")
    if state.upload is not None:
        line.uploads_failed = state.upload.failed
        line.upload = f"{state.upload.uploaded + state.upload.skipped} up, {state.upload.failed} failed"
    if state.status == "failed" or (state.status == "moving" and state.error):
        line.status = "failed"  # a pass that stopped on an error (a moving pass: the next start retries its moves)
        line.detail = (state.error or "") + ("; moves stopped: the next start retries them"
                                             if state.status == "moving" else "")
    elif state.status == "moving":
        line.status = "interrupted"
        line.detail = "moves interrupted (the runner was stopped): the next start finishes them"
    elif state.status == "label-only":
        line.status = "label-only"
        line.detail = (f"dedup-manifest.json version {state.passes} written ({c.total - c.skipped - c.error} files); "
                       "nothing moved: the pipeline decides and labels in the data platform")
    elif state.status == "dry-run":
        line.status = "dry-run"
        line.detail = "planned only: nothing was moved; result.json says where each file would go"
    else:
        line.status = state.status
    if line.uploads_failed and not line.detail:
        line.detail = f"{line.uploads_failed} uploads failed: retried on the next pass"
    return line


def status_main(argv: list[str]) -> int:
    parser = UsageParser(prog="python -m local_runner status",
                         description="List the runs of a drop zone: processed, label-only, pending, failed.")
    _layout_args(parser)
    add_run_selection(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    args = parser.parse_args(argv)
    check_run_selection(parser, args.run_depth, args.include)
    layout = _layout(args)
    lines = collect_status(layout, depth=args.run_depth, include=args.include, settle_seconds=args.settle_seconds)
    if args.json:
        print(json.dumps([asdict(line) for line in lines], indent=2))
        return EXIT_OK
    if not lines:
        print(f"no runs under {layout.root}")
        return EXIT_OK
    header = ("RUN", "STATUS", "FILES", "UNIQUE", "DUPLICATE", "ERROR", "SKIPPED", "RESTORED", "WAITING", "UPLOAD",
              "UPDATED", "")
    rows = [(ln.run, ln.status, str(ln.total), str(ln.unique), str(ln.duplicate), str(ln.error), str(ln.skipped),
             str(ln.restored), str(ln.files_waiting), ln.upload, ln.updated_at, ln.detail) for ln in lines]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    by_status = Counter(ln.status for ln in lines)
    print(f"{len(lines)} runs: {by_status['processed']} processed, {by_status['pending'] + by_status['new']} "
          f"pending, {by_status['failed']} failed, {by_status['interrupted']} interrupted, {by_status['dry-run']} "
          f"dry-run, {by_status['label-only']} label-only; files: {sum(ln.skipped for ln in lines)} skipped, {sum(ln.restored for ln in lines)} restored, "
          f"{sum(ln.files_waiting for ln in lines)} waiting; {sum(ln.uploads_failed for ln in lines)} uploads failed")
    return EXIT_OK


# --- restore ---------------------------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    restored: list[tuple[str, str]] = field(default_factory=list)  # (archived path, where it is now)
    already: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def restore(layout: Layout, run: str, paths: Sequence[str] = (), *, dry_run: bool = False) -> RestoreReport:
    """Bring archived files of ``run`` back into the run folder, through the run's journal; idempotent."""
    from .journal import Journal
    from .mover import Mover
    from .processing import count

    records = RunRecords(layout.records(run))
    state, result = records.read_state(), records.read_result()
    if state is None or result is None:
        raise InputError(f"run {run!r} has no records under {layout.records(run)}: check the run name "
                         "(`python -m local_runner status W` lists them)")
    if state.status == "moving":
        raise InputError(f"run {run!r} has interrupted moves: start the runner once (--once) to finish them, "
                         "then restore")
    wanted = {PurePosixPath(p.replace("\\", "/")).as_posix() for p in paths}
    known = {o.path for o in result.files}
    report = RestoreReport(unknown=sorted(p for p in wanted if p not in known))
    archive_prefix = PurePosixPath(layout.archive_dir, run)
    journal = Journal(records.journal_path)
    mover = Mover(layout.root, journal)
    mover.recover()
    todo: list[int] = []  # indexes into result.files: one name may stand for two files (a later file, same name)
    for index, outcome in enumerate(result.files):
        if wanted and outcome.path not in wanted:
            continue
        if outcome.status == "restored":
            report.already.append(outcome.path)
            continue
        if outcome.status != "duplicate" or not outcome.destination:
            if wanted:
                report.failed.append(f"{outcome.path}: not archived ({outcome.status}); nothing to restore")
            continue
        if not PurePosixPath(outcome.destination).is_relative_to(archive_prefix):
            report.already.append(outcome.path)
            continue
        todo.append(index)
    target_of = {i: str(PurePosixPath(run, result.files[i].path)) for i in todo}
    if dry_run:
        report.restored = [(result.files[i].destination or "", target_of[i]) for i in todo]
        return report
    first = journal.next_id()
    mover.move_all([(layout.absolute(result.files[i].destination or ""), layout.absolute(target_of[i]),
                     result.files[i].sha256 or "") for i in todo])
    journal_state = journal.state()
    final_of = {m.src: journal_state.done.get(i) for i, m in journal_state.planned.items() if i >= first}
    failed_of = {m.src: journal_state.failed.get(i) for i, m in journal_state.planned.items() if i >= first}
    files = list(result.files)
    left = dict(state.left_in_place)
    for i in todo:
        outcome = files[i]
        place = final_of.get(outcome.destination or "")
        if place is None:
            report.failed.append(f"{outcome.path}: {failed_of.get(outcome.destination or '') or 'not moved'}")
            continue
        report.restored.append((outcome.destination or "", place))
        files[i] = outcome.model_copy(update={"destination": place, "status": "restored"})
        stat = layout.absolute(place).stat()  # restored on purpose: not decided again while it stays as it is
        left[str(PurePosixPath(place).relative_to(run))] = (stat.st_size, stat.st_mtime_ns)
    if report.restored:
        counts = count(files)  # a restored file is counted as restored, no longer as an archived duplicate
        updated = result.model_copy(update={"files": files, "counts": counts})
        records.write_result(updated)
        if layout.absolute(agent_result_path(layout, result)).is_file():  # the agent's copy, if the run left one
            leave_result(layout, updated)
        now = dt.datetime.now(dt.timezone.utc)
        restored_paths = [str(PurePosixPath(place).relative_to(run)) for _, place in report.restored]
        processed = sorted(set(state.processed_paths) | set(restored_paths))
        records.write_state(state.model_copy(update={
            "restored": [*state.restored, *(f"{src} -> {dst} at {now.isoformat(timespec='seconds')}"
                                            for src, dst in report.restored)],
            "processed_paths": processed, "left_in_place": left, "updated_at": now, "counts": counts,
        }))
    return report


def restore_main(argv: list[str]) -> int:
    parser = UsageParser(
        prog="python -m local_runner restore",
        description="Bring archived files of a run back to the run folder, byte for byte, through the journal. "
        "Restored files are not decided again. Restoring twice is harmless.")
    _layout_args(parser)
    parser.add_argument("run", help="the run's name as `status` prints it, e.g. run-12 or ProjA/run-12")
    parser.add_argument("paths", nargs="*", default=[], metavar="PATH",
                        help="run-relative paths of archived files (optional; default: all of the run's)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be restored; move nothing")
    args = parser.parse_args(argv)
    layout = _layout(args)
    run_name = args.run.replace("\\", "/").strip("/")
    handlers = logs.configure("INFO", layout.root / layout.records_dir / "logs" / "local_runner.log", console=False)
    try:
        report = restore(layout, run_name, args.paths, dry_run=args.dry_run)
        if report.restored and not args.dry_run:
            from .report import write_reports

            write_reports(layout, [run_name])
    finally:
        logs.remove(handlers)
    verb = "would restore" if args.dry_run else "restored"
    for src, dst in report.restored:
        print(f"{verb} {src} -> {dst}")
        log.info("%s %s -> %s", verb, src, dst)
    for path in report.already:
        print(f"already restored: {path}")
    for line in report.failed:
        print(f"not restored: {line}", file=sys.stderr)
    for path in report.unknown:
        print(f"not in run {run_name}: {path}", file=sys.stderr)
    print(f"{len(report.restored)} {verb}, {len(report.already)} already restored, "
          f"{len(report.failed) + len(report.unknown)} not restored")
    return EXIT_RUN_FAILED if report.failed or report.unknown else EXIT_OK


# --- demo ------------------------------------------------------------------------------------------------------


def demo_main(argv: list[str]) -> int:
    parser = UsageParser(
        prog="python -m local_runner demo",
        description="The whole drop zone on this machine: a generated CytPix-like run, a local S3 (moto server on "
        "127.0.0.1), one pass of the runner with upload, and what happened.")
    parser.add_argument("--dir", type=Path, help="where to create the drop zone (default: a new temporary folder)")
    parser.add_argument("--total-images", type=positive_int, default=1000)
    parser.add_argument("--similar-images", type=non_negative_int, default=300,
                        help="how many of the images are near-duplicates: fewer than --total-images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.similar_images >= args.total_images:  # checked before anything is created: no empty folder is left
        parser.error(f"--similar-images {args.similar_images} must be fewer than --total-images {args.total_images}")
    from . import cli, generator
    from .s3_server import LocalS3

    root = args.dir or Path(tempfile.mkdtemp(prefix="image-dedup-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(p for p in root.iterdir() if p.name != ".dedup"):
        raise InputError(f"{root} is not empty: give an empty or new folder with --dir")
    staging = root / ".dedup" / "demo"
    print(f"1/3 generating {args.total_images} images ({args.similar_images} near-duplicates) ...", flush=True)
    made = generator.generate(staging, args.total_images, args.similar_images, seed=args.seed, run="run-0001")
    made.run_dir.rename(root / made.run_dir.name)  # the run appears in the drop zone in one step
    bucket, prefix = "drop-zone", "cytpix"
    with LocalS3(bucket) as s3:
        print(f"2/3 local S3 at {s3.endpoint_url}; running: python -m local_runner {root} --once "
              f"--settle-seconds 0 --upload-to s3://{bucket}/{prefix}", flush=True)
        code = cli.main([str(root), "--once", "--settle-seconds", "0", "--upload-to", f"s3://{bucket}/{prefix}",
                         "--s3-endpoint-url", s3.endpoint_url])
        objects = s3.objects(prefix + "/")
    layout = Layout(root)
    records = RunRecords(layout.records("run-0001"))
    result = records.read_result()
    print("3/3 what happened")
    if result is None:
        print(f"the run was not processed (exit code {code}); see {root / '.dedup' / 'logs' / 'local_runner.log'}")
        return EXIT_RUN_FAILED
    c = result.counts
    print(f"  files: {c.total}   unique: {c.unique}   duplicates archived: {c.duplicate}   errors: {c.error}")
    groups = {name: entry["group"] for name, entry in json.loads(made.truth_path.read_text())["files"].items()}
    false_merges = sum(1 for o in result.files if o.status == "duplicate" and o.duplicate_of
                       and groups.get(o.path) != groups.get(o.duplicate_of))
    print(f"  generator truth: {made.originals} distinct images, {made.duplicates} near-duplicates; "
          f"found {c.duplicate - false_merges} of them, {false_merges} distinct images wrongly archived")
    print(f"  unique images: {root / 'unique' / 'run-0001'}")
    print(f"  archived duplicates: {root / 'archive' / 'run-0001'}")
    print(f"  result: {records.result_path}")
    if records.report_path.exists():
        print(f"  report: {records.report_path}")
    images = [k for k in objects if "/.dedup/" not in k]
    print(f"  bucket s3://{bucket}/{prefix}/: {len(objects)} objects ({len(images)} unique images + result.json); "
          f"the moto server has stopped, so the bucket is gone")
    print(f"  log: {root / '.dedup' / 'logs' / 'local_runner.log'}")
    return code
