"""The run report, opened in a real headless Chromium: loads without errors, shows the groups, pages big runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from local_runner import cli, processing, report
from local_runner.generator import generate
from local_runner.layout import Layout
from local_runner.records import RunRecords

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


def _chromium(page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={page.parent / '.chromium'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def _console(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line]


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    generate(base / "gen", 40, 16, seed=8, progress=False)
    root = base / "W"
    shutil.copytree(base / "gen" / "run-0001", root / "run-0001")
    (root / "run-0001" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress"]) == 0
    return root


def test_report_is_self_contained_with_every_group_and_error(processed: Path) -> None:
    records = RunRecords(Layout(processed).records("run-0001"))
    result = records.read_result()
    page = records.report_path.read_text()
    assert not re.search(r"(src|href)=\"(https?:|file:|/)", page)  # nothing outside the page
    duplicates = [o for o in result.files if o.status == "duplicate"]
    assert len(duplicates) >= 10
    for outcome in duplicates:
        assert outcome.path in page and outcome.duplicate_of in page
    assert page.count('class="group"') == len({o.duplicate_of for o in duplicates})
    assert page.count("data:image/jpeg;base64,") == len(duplicates) + len({o.duplicate_of for o in duplicates})
    assert "broken.png" in page and "Files in error (1)" in page
    index = (processed / ".dedup" / "index.html").read_text()
    assert 'href="runs/run-0001/report.html"' in index


def test_the_runner_makes_thumbnails_without_decoding_the_files_again(tmp_path: Path, monkeypatch) -> None:
    generate(tmp_path / "gen", 40, 16, seed=9, progress=False)
    root = tmp_path / "W"
    shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")

    def no_decoding(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("the report decoded a file the engine had already decoded")

    monkeypatch.setattr(report, "thumbnail", no_decoding)
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress"]) == 0
    records = RunRecords(Layout(root).records("run-0001"))
    duplicates = [o for o in records.read_result().files if o.status == "duplicate"]
    page = records.report_path.read_text()
    assert len(duplicates) >= 10
    assert page.count("data:image/jpeg;base64,") == len(duplicates) + len({o.duplicate_of for o in duplicates})


@needs_chromium
def test_report_loads_in_chromium_and_shows_the_groups(processed: Path, tmp_path: Path) -> None:
    page = RunRecords(Layout(processed).records("run-0001")).report_path
    dom = _chromium(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console(dom.stderr) == []  # no script error, no blocked load
    assert dom.stdout.count('class="tile kept"') >= 5 and "Duplicate groups" in dom.stdout
    shot = tmp_path / "report.png"
    run = _chromium(page, f"--screenshot={shot}", "--window-size=1200,1400")
    assert run.returncode == 0 and shot.is_file()
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    thumbs = pixels[500:1400, 20:400]  # where the first groups' thumbnails are drawn
    assert thumbs.std() > 20  # images and borders, not a blank page


@needs_chromium
def test_the_console_check_does_catch_a_page_that_loads_from_outside(tmp_path: Path) -> None:
    page = tmp_path / "bad.html"
    page.write_bytes(report._page("bad", ['<img src="http://127.0.0.1:9/x.png">']))
    assert any("Content Security Policy" in line for line in _console(_chromium(page, "--dump-dom").stderr))


def test_big_runs_are_paged(processed: Path, monkeypatch) -> None:
    monkeypatch.setattr(report, "GROUPS_PER_PAGE", 3)
    layout = Layout(processed)
    records = RunRecords(layout.records("run-0001"))
    result = records.read_result()
    groups = len(report.groups_of(result))
    report.write_report(records.folder, result, layout)
    pages = sorted(records.folder.glob("report*.html"))
    assert len(pages) == -(-groups // 3)
    first = records.report_path.read_text()
    assert f"page 1 of {len(pages)}" in first and "3 groups per page" in first
    assert 'href="report-0002.html"' in records.report_path.read_text()
    monkeypatch.setattr(report, "GROUPS_PER_PAGE", 200)
    report.write_report(records.folder, result, layout)
    assert [p.name for p in records.folder.glob("report*.html")] == ["report.html"]  # stale pages removed


def test_the_report_lists_near_misses_closest_first(tmp_path: Path) -> None:
    """Kept images whose nearest kept candidate came within 3x max_residual are listed, with that image and the
    residual, closest first; a far one is not."""
    from dedup_engine import DedupParams, DedupResult
    from dedup_engine.models import Counts, FileOutcome

    files = [FileOutcome(path="a.png", status="unique", reason="kept: the first image of its kind"),
             FileOutcome(path="b.png", status="unique", nearest="a.png", residual=1.9,
                         reason="kept: nearest kept a.png: residual 1.90 > 0.75 (3 candidates)"),
             FileOutcome(path="c.png", status="unique", nearest="a.png", residual=0.81,
                         reason="kept: nearest kept a.png: residual 0.81 > 0.75 (3 candidates)"),
             FileOutcome(path="d.png", status="unique", nearest="a.png", residual=7.5,
                         reason="kept: nearest kept a.png: residual 7.50 > 0.75 (3 candidates)")]
    result = DedupResult(run="run-1", method="hash", params=DedupParams(), counts=Counts(total=4, unique=4),
                         files=files)
    root = tmp_path / "W"
    (root / "run-1").mkdir(parents=True)
    layout = Layout(root)
    page = report.write_report(layout.records("run-1"), result, layout).read_text()
    table = page[page.index("Near misses (2)") : page.index("Skipped files")]
    assert table.index("c.png") < table.index("b.png") and "a.png: 0.81" in table and "a.png: 1.90" in table
    assert "d.png" not in table


def _pages(folder: Path) -> dict[str, str]:
    """The report's pages, less what a run's clock writes in them (when it was decided, its timings)."""
    return {p.name: re.sub(r"Decided [^<]*|Timings: [^<]*", "", p.read_text()) for p in folder.glob("report*.html")}


def _marks(folder: Path) -> list[int]:
    """The processes that called the reporter (see report_spies.py)."""
    return [int(p.name.rsplit("-", 1)[1]) for p in folder.glob("report-written-by-*")]


def test_a_large_full_pass_has_its_report_written_by_another_process_during_the_moves(tmp_path: Path,
                                                                                      monkeypatch) -> None:
    """From ``report_apart_from`` files (10,000; here 1) another process writes a full pass's report while this one
    moves the files: the same pages this process writes for a smaller pass, the engine's thumbnails included, and
    its temporary file of thumbnails gone."""
    import report_spies

    generate(tmp_path / "gen", 60, 24, seed=10, progress=False)
    folders = {}
    for apart in (None, 1):
        root = tmp_path / f"W-{apart}"
        shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")
        monkeypatch.setattr(processing.RunProcessor, "report_apart_from", apart)
        monkeypatch.setattr(report, "write_report", report_spies.marking)  # the runner's reporter
        assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2"]) == 0
        folders[apart] = RunRecords(Layout(root).records("run-0001")).folder
    here, apart_folder = folders[None], folders[1]
    assert _marks(here) == [os.getpid()]
    assert len(_marks(apart_folder)) == 1 and _marks(apart_folder)[0] != os.getpid()
    pages = _pages(apart_folder)
    assert pages == _pages(here) and "report.html" in pages
    assert pages["report.html"].count("data:image/jpeg;base64,") >= 20  # the engine's thumbnails, handed over
    assert not list(apart_folder.glob(f"*{processing.REPORT_THUMBNAILS}*"))
    # a pass killed while the report was made leaves the file (and the run not marked processed): the next pass
    # removes it
    (apart_folder / processing.REPORT_THUMBNAILS).write_bytes(b"left by a killed pass")
    shutil.copy(next((tmp_path / "gen" / "run-0001").iterdir()), tmp_path / "W-1" / "run-0001" / "new.png")
    assert cli.main([str(tmp_path / "W-1"), "--once", "--settle-seconds", "0", "--no-progress"]) == 0
    assert not (apart_folder / processing.REPORT_THUMBNAILS).exists()


def test_the_runner_writes_the_report_itself_when_that_process_fails_or_a_move_ends_elsewhere(
        tmp_path: Path, monkeypatch) -> None:
    """A report process that fails, or is still at work REPORT_APART_WAIT seconds after the moves (then stopped),
    leaves the report to the runner; so does a move that ends otherwise than planned (a file gone before its move):
    the pages then show the pass as it ended."""
    import report_spies

    from local_runner import mover

    generate(tmp_path / "gen", 60, 24, seed=10, progress=False)
    monkeypatch.setattr(processing.RunProcessor, "report_apart_from", 1)
    root = tmp_path / "failing"
    shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")
    monkeypatch.setattr(report, "write_report", report_spies.failing_apart)
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2"]) == 0
    folder = RunRecords(Layout(root).records("run-0001")).folder
    assert _marks(folder) == [os.getpid()] and (folder / "report.html").is_file()
    assert "the report process failed (exit code 1); the report is written here" in (
        root / ".dedup" / "logs" / "local_runner.log").read_text()
    assert not list(folder.glob(f"*{processing.REPORT_THUMBNAILS}*"))

    root = tmp_path / "stuck"  # a process that never finishes is stopped once the moves are done and waited for
    shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")
    monkeypatch.setattr(report, "write_report", report_spies.stuck_apart)
    monkeypatch.setattr(processing, "REPORT_APART_WAIT", 1.0)
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2"]) == 0
    folder = RunRecords(Layout(root).records("run-0001")).folder
    assert _marks(folder) == [os.getpid()] and (folder / "report.html").is_file()
    assert "the report process had not finished 1 s after the moves; the report is written here" in (
        root / ".dedup" / "logs" / "local_runner.log").read_text()

    root = tmp_path / "gone"
    shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")
    monkeypatch.setattr(report, "write_report", report_spies.marking)
    gone = sorted((root / "run-0001").iterdir())[5]
    original = mover.Mover.move_all

    def move_all(self, moves):  # type: ignore[no-untyped-def]
        gone.unlink()
        return original(self, moves)

    monkeypatch.setattr(mover.Mover, "move_all", move_all)
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2"]) == 0
    folder = RunRecords(Layout(root).records("run-0001")).folder
    marks = _marks(folder)
    assert os.getpid() in marks and len(marks) == 2  # both wrote it; the runner's pages, after the other's, stay
    outcome = [o for o in RunRecords(folder).read_result().files if o.path == gone.name][0]
    assert outcome.error and outcome.destination is None
    assert not list(folder.glob(f"*{processing.REPORT_THUMBNAILS}*"))
