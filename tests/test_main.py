"""``python -m local_runner`` as a process: it leaves without the interpreter's teardown once its work is done, and
everything that exit must do outside the process still happens (exit status, log file, output, no process left)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

FRAMES = Path(__file__).parent / "data" / "frames"
ROOT = Path(__file__).parent.parent


def _runner(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    return subprocess.run([sys.executable, "-m", "local_runner", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_finished_run_exits_with_its_status_its_log_written_and_no_process_left(tmp_path: Path) -> None:
    watched = tmp_path / "w"
    run = watched / "run-1"
    run.mkdir(parents=True)
    for frame in FRAMES.iterdir():
        shutil.copy(frame, run / frame.name)
    shutil.copy(FRAMES / "retina_y0_x0.png", run / "zz_copy.png")  # a copy, after its original: archived
    started = time.time()
    done = _runner(str(watched), "--once", "--settle-seconds", "0", "--no-progress", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "done: 1 runs processed, 0 failed" in done.stderr  # the console's last line, flushed
    log = (watched / ".dedup" / "logs" / "local_runner.log").read_text()
    assert log.rstrip().splitlines()[-1].endswith("done: 1 runs processed, 0 failed, 0 pending, 0 already up to "
                                                  "date; 0 uploads failed")  # the log file closed, nothing lost
    assert sorted(p.name for p in (watched / "archive" / "run-1").iterdir()) == ["zz_copy.png"]
    assert len(list((watched / "unique" / "run-1").iterdir())) == len(list(FRAMES.iterdir()))
    # the runner's forkserver and workers (orphans once it has gone, so looked up by their command lines) end with it
    deadline = time.monotonic() + 10
    while (left := _started_since(started)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [p.info["cmdline"] for p in left]


def _started_since(started: float) -> list[psutil.Process]:
    """Python processes of multiprocessing (forkserver, workers, resource tracker) started since ``started``."""
    found = []
    for process in psutil.process_iter(["cmdline", "create_time", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["create_time"] >= started - 0.05 and "multiprocessing" in cmdline and \
                process.info["status"] != psutil.STATUS_ZOMBIE and process.pid != os.getpid():
            found.append(process)
    return found


def test_an_error_exits_with_its_status(tmp_path: Path) -> None:
    done = _runner(str(tmp_path / "missing"), "--once", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "does not exist" in done.stderr
