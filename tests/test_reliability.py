"""A few kill -9 trials in CI (the script runs 200: see the README), and the soak script's short form."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reliability.kill_trials import run_trials  # noqa: E402


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGKILL")
def test_kill_trials_lose_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    results = run_trials(4, images=40, similar=15, seed=11, workdir=tmp_path, log=lines.append)
    assert len(results) == 4
    assert [r.problems for r in results] == [[], [], [], []], "\n".join(lines)


@pytest.mark.skipif(not Path("/dev/shm").is_dir(), reason="needs a second file system")
def test_kill_trials_across_volumes(tmp_path: Path) -> None:
    if Path("/dev/shm").stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("/dev/shm is on the same file system here")
    lines: list[str] = []
    results = run_trials(3, images=40, similar=15, seed=12, workdir=tmp_path, other_volume=Path("/dev/shm"),
                         log=lines.append)
    assert [r.problems for r in results] == [[], [], []], "\n".join(lines)


def test_short_soak_keeps_reporting_runs_without_leaking(tmp_path: Path) -> None:
    from reliability.soak_watcher import soak

    summary = soak(6.0, files_per_run=100, workdir=tmp_path, log=lambda line: None)
    assert summary["runs_reported"] >= 3
    assert summary["runs_reported"] == summary["runs_written"]  # every run written was reported, once
    assert summary["threads_end"] <= summary["threads_after_warmup"]
