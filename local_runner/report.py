"""The run report a scientist opens: W/.dedup/runs/<run>/report.html, and an index of runs: W/.dedup/index.html.

Self-contained: thumbnails are inline JPEG data URIs, styles inline, no script, no external file or network (a
Content-Security-Policy forbids any). Large runs are paged: ``report.html`` holds the summary, the errors and the
first GROUPS_PER_PAGE duplicate groups; ``report-0002.html`` ... the next ones, each page self-contained, the page
size stated on every page. Thumbnails are small (THUMB px), so a 40,000-image run stays light to open.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping, Sequence


from dedup_engine.decoding import decode
from dedup_engine.errors import DedupError
from dedup_engine.models import DedupResult, FileOutcome
from dedup_engine.previews import preview_jpeg

from .layout import Layout
from .records import RunRecords, atomic_write, recorded_runs
from .thumbnails import ThumbnailBlob

log = logging.getLogger("local_runner.report")

GROUPS_PER_PAGE = 200
THUMB = 96
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}
h1{font-size:1.4em;margin:0 0 .3em} h2{font-size:1.15em;margin:1.4em 0 .5em}
table{border-collapse:collapse} td,th{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #ddd}
.counts td{font-size:1.1em} .num{text-align:right;font-variant-numeric:tabular-nums}
.group{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start;background:#fff;border:1px solid #ddd;
 border-radius:6px;padding:8px;margin:8px 0}
.tile{width:180px;font-size:12px;word-break:break-all} .tile img{display:block;width:96px;height:96px;
 object-fit:contain;background:#eee;image-rendering:pixelated;border:2px solid #ccc}
.kept img{border-color:#2a7} .kept b{color:#175} .arch img{border-color:#c83}
.nav{margin:1em 0} .nav a{margin-right:1em} .err{color:#a22} .muted{color:#777}
"""


@dataclass(frozen=True)
class Group:
    kept: FileOutcome
    archived: tuple[FileOutcome, ...]


def groups_of(result: DedupResult) -> list[Group]:
    by_path: dict[str, FileOutcome] = {}
    for outcome in result.files:  # a kept image is named by its path, or by its place when a later file took its name
        by_path.setdefault(outcome.path, outcome)
        if outcome.status == "unique" and outcome.destination:
            by_path[outcome.destination] = outcome
    members: dict[str, list[FileOutcome]] = {}
    for outcome in result.files:
        if outcome.status == "duplicate" and outcome.duplicate_of:
            members.setdefault(outcome.duplicate_of, []).append(outcome)
    return [Group(by_path[kept], tuple(dups)) for kept, dups in members.items() if kept in by_path]


def thumbnail(path: Path, *, max_pixels: int) -> str | None:
    """A small JPEG data URI of the image at ``path`` (decoded by content), or None if it cannot be read."""
    try:
        data = path.read_bytes()
        image = decode(data, path=path.name, max_pixels=max_pixels)
    except (OSError, DedupError):
        return None
    return _data_uri(preview_jpeg(image.grey, THUMB))


def _data_uri(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _where(layout: Layout, run: str, outcome: FileOutcome) -> Path:
    """Where the file is now: its destination once moved, else still in the run folder (dry run, error)."""
    if outcome.destination:
        moved = layout.absolute(outcome.destination)
        if moved.exists():
            return moved
    return layout.run_dir(run).joinpath(*PurePosixPath(outcome.path).parts)


def _tile(outcome: FileOutcome, uri: str | None, role: str, dry_run: bool) -> str:
    name = html.escape(outcome.path)
    image = f'<img alt="{name}" src="{uri}">' if uri else '<div class="muted">(no preview)</div>'
    if role == "kept":
        detail = "<b>would be kept</b>" if dry_run else "<b>kept</b>"
    else:
        bits = [f"distance {outcome.distance:g}" if outcome.distance is not None else "",
                f"residual {outcome.residual:.2f}" if outcome.residual is not None else ""]
        detail = ("would be archived: " if dry_run else "archived: ") + html.escape(outcome.reason or "duplicate") + \
            ("<br>" + ", ".join(b for b in bits if b) if any(bits) else "")
    where = ("would go to " if dry_run and outcome.destination else "") + html.escape(outcome.destination or "")
    return f'<div class="tile {role}">{image}<div>{name}</div><div>{detail}</div><div class="muted">{where}</div></div>'


def _page(title: str, body: Iterable[str]) -> bytes:
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            + "".join(body) + "</body></html>").encode("utf-8")


def _page_name(number: int) -> str:
    return "report.html" if number == 1 else f"report-{number:04d}.html"


def _nav(number: int, pages: int, groups: int) -> str:
    links = []
    if number > 1:
        links.append(f'<a href="{_page_name(number - 1)}">&larr; previous</a>')
    links.append(f"page {number} of {pages} &middot; {GROUPS_PER_PAGE} groups per page &middot; {groups} groups")
    if number < pages:
        links.append(f'<a href="{_page_name(number + 1)}">next &rarr;</a>')
    if number != 1:
        links.append('<a href="report.html">summary</a>')
    return '<div class="nav">' + " ".join(links) + "</div>"


def write_report(folder: Path, result: DedupResult, layout: Layout, *, workers: int = 2,
                 previews: Mapping[str, bytes] | None = None) -> Path:
    """Write the run's report pages into ``folder``; returns the first page. ``previews`` (path -> JPEG, made by
    the engine while it decoded the images) spare decoding those files again; others are decoded here."""
    run = result.run
    groups = groups_of(result)
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    max_pixels = result.params.max_pixels
    records = RunRecords(folder)
    state = records.read_state()
    dry_run = state is not None and state.status == "dry-run"
    summary = _summary(result, layout, dry_run, _pass_timings(records, state.passes if state else 0))
    # each page is written (flushed to disk and renamed into place) by a thread of its own while the next one is
    # made: the flush waits for the disk, not for this thread (49 pages at 40,000 images)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="report-writer") as writer:
        written = []
        for number in range(1, pages + 1):
            chunk = groups[(number - 1) * GROUPS_PER_PAGE: number * GROUPS_PER_PAGE]
            outcomes = [o for g in chunk for o in (g.kept, *g.archived)]
            uris = {o.path: _data_uri(previews[o.path]) for o in outcomes if previews and o.path in previews}
            missing = [o for o in outcomes if o.path not in uris]
            if missing:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    uris.update(zip((o.path for o in missing), pool.map(
                        lambda o: thumbnail(_where(layout, run, o), max_pixels=max_pixels), missing)))
            body = [f"<h1>Run {html.escape(run)}</h1>"]
            if number == 1:
                body.append(summary)
            body.append(f"<h2>Duplicate groups ({len(groups)})</h2>")
            body.append(_nav(number, pages, len(groups)))
            if not groups:
                body.append('<p class="muted">No duplicates: every image was kept.</p>')
            for group in chunk:
                tiles = [_tile(group.kept, uris.get(group.kept.path), "kept", dry_run)]
                tiles += [_tile(o, uris.get(o.path), "arch", dry_run) for o in group.archived]
                body.append('<div class="group">' + "".join(tiles) + "</div>")
            body.append(_nav(number, pages, len(groups)))
            written.append(writer.submit(atomic_write, folder / _page_name(number),
                                         _page(f"Run {run} - dedup report", body)))
        for page in written:
            page.result()  # a page that could not be written raises here, as it did where it was made
    for stale in folder.glob("report-*.html"):  # pages of an earlier, longer version of this report
        if int(stale.stem.split("-")[1]) > pages:
            stale.unlink()
    return folder / "report.html"


def write_report_apart(reporter: Callable[..., Path], folder: Path, layout: Layout, thumbnails: Path) -> None:
    """A process's whole work (see ``RunProcessor._report_apart``): the report of the run whose records are in
    ``folder``, from its result.json, with the thumbnails ``ThumbnailSpill.save`` wrote to ``thumbnails``; exits with
    status 1, naming the error on stderr, if that cannot be done."""
    try:
        result = RunRecords(folder).read_result()
        if result is None:
            raise DedupError(f"no result in {folder}")
        reporter(folder, result, layout, previews=ThumbnailBlob.load(thumbnails))
    except Exception as exc:  # noqa: BLE001 - the runner writes the report itself then
        print(f"image-dedup report process: {type(exc).__name__}: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc


def _pass_timings(records: RunRecords, passes: int) -> tuple[int, dict[str, float]] | None:
    """The latest pass's own timings, when the run had several passes (result.json holds their sums)."""
    if passes < 2:
        return None
    try:
        return passes, records.read_pass(passes).timings
    except (OSError, ValueError):
        return None


def _timings(timings: Mapping[str, float]) -> str:
    return html.escape(", ".join(f"{k} {v:.2f} s" for k, v in timings.items()) or "not recorded")


NEAR_MISS = 3.0  # kept images whose nearest candidate's residual is within this many times max_residual are listed
NEAR_MISS_ROWS = 100


def _summary(result: DedupResult, layout: Layout, dry_run: bool,
             latest: tuple[int, dict[str, float]] | None) -> str:
    c = result.counts
    p = result.params
    archived = "duplicates (would be archived)" if dry_run else "duplicates archived"
    counts = (f'<table class="counts"><tr><th>files</th><th>unique</th><th>{archived}</th><th>errors</th>'
              "<th>passed through</th><th>skipped</th><th>restored</th></tr>"
              + "<tr>" + "".join(f"<td class=num>{v}</td>" for v in (c.total, c.unique, c.duplicate, c.error,
                                                                      c.passthrough, c.skipped, c.restored))
              + "</tr></table>")
    params = ", ".join(f"{k}={v}" for k, v in p.model_dump().items())
    when = result.finished_at.astimezone().strftime("%Y-%m-%d %H:%M:%S") if result.finished_at else "?"
    timings = f"Timings: {_timings(result.timings)}"
    if latest is not None:
        timings = (f"Timings of all {latest[0]} passes (summed): {_timings(result.timings)}<br>"
                   f"Timings of pass {latest[0]} alone: {_timings(latest[1])}")
    run, unique, archive = (html.escape(x) for x in (result.run, layout.unique_dir, layout.archive_dir))
    if dry_run:
        where = (f"<p><b>Dry run: nothing was moved.</b> Unique images would go to <code>{unique}/{run}</code>, "
                 f"duplicates would be archived in <code>{archive}/{run}</code>; every file is still in the run "
                 "folder. Run without <code>--dry-run</code> to do it.</p>")
    else:
        where = (f"<p>Unique images are in <code>{unique}/{run}</code>, archived duplicates in "
                 f"<code>{archive}/{run}</code>. Nothing was deleted; <code>python -m local_runner restore W RUN "
                 "[PATH ...]</code> brings archived files back.</p>")
    parts = [counts,
             f"<p>Decided {html.escape(when)} by image-dedup {html.escape(result.tool_version or '')} "
             f"(method <b>{html.escape(result.method)}</b>).<br>Parameters: <code>{html.escape(params)}</code><br>"
             f"{timings}</p>", where]
    parts += _file_table("Files in error", "Left untouched in the run folder.", "error",
                         [(o.path, o.error or "") for o in result.files if o.status == "error"])
    near = sorted((o for o in result.files if o.status == "unique" and o.nearest and o.residual is not None
                   and o.residual <= NEAR_MISS * p.max_residual), key=lambda o: o.residual or 0.0)
    parts += _file_table("Near misses", f"Kept, although a kept image came within {NEAR_MISS:g} times max_residual "
                         f"({p.max_residual:g}): each row names the kept image whose pixel proof came nearest, and "
                         f"its residual (closest first{', the first ' + str(NEAR_MISS_ROWS) if len(near) > NEAR_MISS_ROWS else ''}"
                         "). If such pairs are copies, max_residual may be too low; distinct images must stay above it.",
                         "nearest kept image: residual",
                         [(o.path, f"{o.nearest}: {o.residual:.2f}") for o in near[:NEAR_MISS_ROWS]])
    parts += _file_table("Skipped files", "Not taken as input (links, temporary, system and hidden files): left "
                         "untouched in the run folder.", "reason",
                         [(o.path, o.reason or "") for o in result.files if o.status == "skipped"])
    parts += _file_table("Restored files", "Archived duplicates brought back into the run folder.", "now at",
                         [(o.path, o.destination or "") for o in result.files if o.status == "restored"])
    return "".join(parts)


def _file_table(title: str, note: str, column: str, rows: Sequence[tuple[str, str]]) -> list[str]:
    parts = [f"<h2>{html.escape(title)} ({len(rows)})</h2>"]
    if not rows:
        return parts + ['<p class="muted">None.</p>']
    cells = "".join(f"<tr><td>{html.escape(path)}</td><td class=err>{html.escape(text)}</td></tr>"
                    for path, text in rows)
    return parts + [f"<p>{html.escape(note)}</p><table><tr><th>file</th><th>{html.escape(column)}</th></tr>"
                     f"{cells}</table>"]


def write_index(layout: Layout) -> Path:
    """W/.dedup/index.html: every run with its counts and a link to its report."""
    rows = []
    for records, state in recorded_runs(layout.runs_records_root()):
        c = state.counts
        link = os.path.relpath(records.report_path, layout.root / layout.records_dir).replace(os.sep, "/")
        name = html.escape(state.run)
        cell = f'<a href="{html.escape(link)}">{name}</a>' if records.report_path.exists() else name
        rows.append(f"<tr><td>{cell}</td><td>{html.escape(state.status)}</td><td class=num>{c.total}</td>"
                    f"<td class=num>{c.unique}</td><td class=num>{c.duplicate}</td><td class=num>{c.error}</td>"
                    f"<td>{state.updated_at.astimezone().strftime('%Y-%m-%d %H:%M')}</td></tr>")
    body = [f"<h1>Drop zone {html.escape(str(layout.root))}</h1>",
            f"<p class=muted>Updated {dt.datetime.now().strftime('%Y-%m-%d %H:%M:%S')}</p>",
            "<table><tr><th>run</th><th>status</th><th>files</th><th>unique</th><th>duplicates</th><th>errors</th>"
            "<th>updated</th></tr>" + "".join(rows) + "</table>"]
    path = layout.root / layout.records_dir / "index.html"
    atomic_write(path, _page("image-dedup runs", body))
    return path


def write_reports(layout: Layout, runs: Sequence[str]) -> list[Path]:
    """Regenerate the reports of named runs from their records (e.g. after a restore)."""
    written = []
    for run in runs:
        records = RunRecords(layout.records(run))
        result = records.read_result()
        if result is not None:
            written.append(write_report(records.folder, result, layout))
    write_index(layout)
    return written
