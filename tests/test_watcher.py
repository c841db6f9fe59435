"""Run discovery, settling and the watcher, with real files, real watchdog events and real polling."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path, PureWindowsPath

import pytest

from local_runner.runs import discover_runs, list_run_files, run_for_path, with_known_runs
from local_runner.settle import SettleTracker, open_for_writing, settled_by_age
from local_runner.watcher import RunWatcher

OUTPUTS = frozenset({"unique", "archive", ".dedup"})


def _write(path: Path, data: bytes = b"image bytes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_discover_runs_depth_include_and_outputs(tmp_path: Path) -> None:
    _write(tmp_path / "run-1" / "a.png")
    _write(tmp_path / "run-2" / "sub" / "b.bmp")
    (tmp_path / "empty-run").mkdir()
    _write(tmp_path / "unique" / "run-1" / "x.png")
    _write(tmp_path / "archive" / "run-1" / "y.png")
    _write(tmp_path / ".dedup" / "runs" / "run-1" / "result.json")
    _write(tmp_path / "only-temp" / "~$lock.tmp")
    assert [r.name for r in discover_runs(tmp_path, exclude_dirs=OUTPUTS)] == ["run-1", "run-2"]
    _write(tmp_path / "deep" / "ProjA" / "run-9" / "c.png")
    _write(tmp_path / "deep" / "ProjB" / "run-3" / "d.png")
    deep = tmp_path / "deep"
    assert [r.name for r in discover_runs(deep, depth=2)] == ["ProjA/run-9", "ProjB/run-3"]
    assert [r.name for r in discover_runs(deep, depth=2, include=["ProjA*"])] == ["ProjA/run-9"]
    # a run processed before is looked at again (it may hold only a late Thumbs.db), but only if --include selects
    # its project: runs of ProjB are not this runner's to touch once it is told to take ProjA only
    found = discover_runs(deep, depth=2, include=["ProjA*"])
    (deep / "ProjB" / "run-3" / "d.png").unlink()  # now holds no file: discover_runs no longer lists it
    known = ["ProjA/run-9", "ProjB/run-3"]
    assert [r.name for r in with_known_runs(deep, found, known, ["ProjA*"])] == ["ProjA/run-9"]
    assert [r.name for r in with_known_runs(deep, found, known)] == ["ProjA/run-9", "ProjB/run-3"]
    assert run_for_path(deep, deep / "ProjA" / "run-9" / "x" / "c.png", 2) == "ProjA/run-9"
    assert run_for_path(deep, deep / "ProjA", 2) is None
    assert run_for_path(deep, tmp_path / "elsewhere" / "c.png", 2) is None


def test_list_run_files_skips_links_temporary_system_and_hidden_files_with_a_reason(tmp_path: Path) -> None:
    run = tmp_path / "run-1"
    _write(run / "a.png")
    _write(run / "nested dir" / "é b.bmp")
    _write(run / "Thumbs.db")
    _write(run / "transfer.part")
    _write(run / "~$scan.png")
    _write(run / ".hidden.png")
    _write(run / ".cache" / "x.png")
    outside = _write(tmp_path / "secret.png")
    os.symlink(outside, run / "link.png")
    os.mkfifo(run / "pipe")
    listing = list_run_files(discover_runs(tmp_path)[0])
    assert [f.path for f in listing.files] == ["a.png", "nested dir/é b.bmp"]
    skipped = dict(listing.skipped)
    assert sorted(skipped) == [".cache/x.png", ".hidden.png", "Thumbs.db", "link.png", "pipe", "transfer.part",
                               "~$scan.png"]
    assert "symbolic link" in skipped["link.png"] and "not a regular file" in skipped["pipe"]
    assert "temporary" in skipped["transfer.part"] and "temporary" in skipped["~$scan.png"]
    assert "system" in skipped["Thumbs.db"] and "hidden" in skipped[".hidden.png"]
    assert "hidden folder" in skipped[".cache/x.png"] and listing.errors == ()


def test_windows_style_run_names_are_posix_inside_records() -> None:
    from local_runner.layout import Layout

    # Runs are named with "/" whatever the OS; a Windows path splits into the same parts
    win = PureWindowsPath(r"F:\Imaging\ProjA\run-12\img 001.bmp")
    rel = win.relative_to(PureWindowsPath(r"F:\Imaging"))
    assert "/".join(rel.parts[:2]) == "ProjA/run-12" and rel.as_posix() == "ProjA/run-12/img 001.bmp"
    layout = Layout(Path("/w"))
    with pytest.raises(ValueError):
        layout.absolute("../outside.png")
    with pytest.raises(ValueError):
        layout.absolute("/etc/passwd")


def test_settle_tracker_waits_for_quiet_and_for_writers_to_close(tmp_path: Path) -> None:
    now = [0.0]
    busy: list[Path] = []
    tracker = SettleTracker(30.0, clock=lambda: now[0], open_files=lambda run, files: list(busy))
    path = _write(tmp_path / "run-1" / "a.png")
    ref = discover_runs(tmp_path)[0]
    assert not tracker.observe(list_run_files(ref))
    now[0] = 29.0
    assert not tracker.observe(list_run_files(ref))
    path.write_bytes(b"more bytes arrive")  # a change restarts the quiet period
    now[0] = 31.0
    assert not tracker.observe(list_run_files(ref))
    now[0] = 62.0
    busy.append(path)  # still open by the instrument: wait another period
    assert not tracker.observe(list_run_files(ref))
    busy.clear()
    now[0] = 80.0
    assert not tracker.observe(list_run_files(ref))
    now[0] = 93.0
    assert tracker.observe(list_run_files(ref))


def test_open_for_writing_sees_a_real_writer(tmp_path: Path) -> None:
    if not Path("/proc/self/fd").is_dir() and os.name != "nt":
        pytest.skip("no way to see other writers on this OS: documented, stability alone decides")
    run = tmp_path / "run-1"
    path = _write(run / "a.bmp", b"")
    with open(path, "ab") as handle:
        handle.write(b"half")
        handle.flush()
        assert open_for_writing(run, [path]) == [path.resolve()]
        listing = list_run_files(discover_runs(tmp_path)[0])
        assert not settled_by_age(listing, 0.0)
    with open(path, "rb"):
        assert open_for_writing(run, [path]) == []
    assert settled_by_age(list_run_files(discover_runs(tmp_path)[0]), 0.0)
    assert not settled_by_age(list_run_files(discover_runs(tmp_path)[0]), 3600.0)


def _watcher(root: Path, **options) -> RunWatcher:
    options.setdefault("settle_seconds", 0.6)
    options.setdefault("poll_interval", 0.2)
    return RunWatcher(root, needs_processing=lambda listing: True, exclude_dirs=OUTPUTS, **options)


@pytest.mark.parametrize("polling", [False, True], ids=["native-events", "polling"])
def test_watcher_reports_a_run_once_it_has_settled(tmp_path: Path, polling: bool) -> None:
    with _watcher(tmp_path, polling=polling) as watcher:
        assert watcher.mode == ("polling" if polling else "native events")
        assert watcher.wait_settled(timeout=0.5) == []
        started = time.monotonic()
        for i in range(5):
            _write(tmp_path / "run-1" / f"img-{i}.png")
            time.sleep(0.15)
        ready = watcher.wait_settled(timeout=10)
        waited = time.monotonic() - started
    assert [r.run.name for r in ready] == ["run-1"]
    assert len(ready[0].files) == 5  # the run was complete when reported
    assert waited >= 0.6 + 4 * 0.15  # not before the last file had been quiet for the settle time


def test_watcher_native_events_arrive_without_a_rescan(tmp_path: Path) -> None:
    with _watcher(tmp_path, rescan_seconds=3600) as watcher:
        assert watcher.wait_settled(timeout=0.3) == []  # the start-up scan has run; only events remain
        _write(tmp_path / "run-2" / "a.png")
        ready = watcher.wait_settled(timeout=10)
    assert [r.run.name for r in ready] == ["run-2"]


def test_a_file_still_being_written_holds_the_run_back(tmp_path: Path) -> None:
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see the writer")
    _write(tmp_path / "run-1" / "done.png")
    slow = tmp_path / "run-1" / "slow.bmp"
    handle = open(slow, "wb")
    try:
        handle.write(b"BM" + b"\0" * 100)
        handle.flush()  # the folder now looks complete: sizes stop changing, but the instrument holds the file
        with _watcher(tmp_path) as watcher:
            assert watcher.wait_settled(timeout=2.0) == []
            released = threading.Timer(0.3, handle.close)
            released.start()
            ready = watcher.wait_settled(timeout=10)
            released.join()
    finally:
        handle.close()
    assert [r.run.name for r in ready] == ["run-1"]


def test_watcher_depth_two_include_and_ignores_outputs(tmp_path: Path) -> None:
    with _watcher(tmp_path, depth=2, include=["Proj*"]) as watcher:
        _write(tmp_path / "unique" / "ProjA" / "x.png")
        _write(tmp_path / "Other" / "run-1" / "a.png")
        _write(tmp_path / "ProjA" / "run-7" / "sub" / "a.png")
        ready = watcher.wait_settled(timeout=10)
        assert [r.run.name for r in ready] == ["ProjA/run-7"]
        assert watcher.wait_settled(timeout=1.0) == []


def test_watcher_falls_back_to_polling_when_native_events_fail(tmp_path: Path, caplog) -> None:
    class Broken:
        def schedule(self, *args, **kwargs):
            raise OSError(28, "inotify watch limit reached")

    with _watcher(tmp_path, observer_factory=Broken) as watcher:
        assert watcher.mode == "polling"
        _write(tmp_path / "run-1" / "a.png")
        assert [r.run.name for r in watcher.wait_settled(timeout=10)] == ["run-1"]
    assert "polling every" in caplog.text


def test_processed_runs_are_not_reported_again(tmp_path: Path) -> None:
    _write(tmp_path / "run-1" / "a.png")
    done: set[str] = set()
    watcher = RunWatcher(tmp_path, needs_processing=lambda listing: listing.run.name not in done,
                         settle_seconds=0.3, poll_interval=0.1)
    with watcher:
        assert [r.run.name for r in watcher.wait_settled(timeout=5)] == ["run-1"]
        done.add("run-1")
        _write(tmp_path / "run-1" / "b.png")
        assert watcher.wait_settled(timeout=1.0) == []
