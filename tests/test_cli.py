"""The command line: every usage error is one line and exit 2; every parameter of the result can be set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from local_runner import cli
from local_runner.generator import generate
from local_runner.layout import Layout
from local_runner.records import RunRecords


@pytest.fixture
def drop_zone(tmp_path: Path) -> Path:
    root = tmp_path / "W"
    root.mkdir()
    return root


@pytest.mark.parametrize("argv", [
    ["{W}", "--run-depth", "3"],
    ["{W}", "--settle-seconds", "-5"],
    ["{W}", "--settle-seconds", "nan"],
    ["{W}", "--include", "Proj*"],  # a filter of project folders, which exist only at depth 2
    ["{W}", "--workers", "0"],
    ["{W}", "--poll-interval", "0"],
    ["{W}", "--s3-max-attempts", "0"],
    ["{W}", "--max-pixels", "0"],
    ["{W}", "--max-shift-px", "40"],
    ["{W}", "--max-shift-px", "-1"],
    ["{W}", "--hash-size", "2"],
    ["{W}", "--method", "sift"],
    ["status", "{W}", "--run-depth", "3"],
    ["status", "{W}", "--include", "Proj*"],
    ["status", "{W}", "--settle-seconds", "-1"],
    ["restore", "{W}"],
    ["demo", "--total-images", "10", "--similar-images", "20", "--dir", "{W}/demo"],
    ["demo", "--total-images", "0"],
])
def test_a_usage_error_is_one_line_and_exit_2(drop_zone: Path, argv: list[str], capsys) -> None:
    assert cli.main([a.replace("{W}", str(drop_zone)) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (drop_zone / "demo").exists()  # nothing left behind but the log of the error (issue 16: a
    # scheduled task has no console, so an error at start goes to the log file first)
    left = {p.relative_to(drop_zone).as_posix() for p in drop_zone.rglob("*") if p.is_file()}
    assert left <= {".dedup/logs/local_runner.log"}, left


def test_restore_help_says_the_paths_are_optional(drop_zone: Path, capsys) -> None:
    assert cli.main(["restore", "--help"]) == 0
    assert "[PATH ...]" in capsys.readouterr().out
    assert cli.main(["restore", str(drop_zone)]) == 2
    err = capsys.readouterr().err
    assert "required: run (" in err and "paths" not in err


def test_every_parameter_of_the_result_can_be_set_from_the_cli(tmp_path: Path, drop_zone: Path) -> None:
    generate(tmp_path / "gen", 6, 2, seed=1, progress=False)
    shutil.copytree(tmp_path / "gen" / "run-0001", drop_zone / "run-0001")
    small = 248 * 248 - 1  # every generated image is 248 x 248: all refused before decoding
    argv = [str(drop_zone), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "1", "--dry-run",
            "--max-shift-px", "2", "--max-pixels", str(small), "--hash-algorithm", "dhash", "--hash-size", "16",
            "--max-distance", "7", "--max-mse", "12.5", "--max-residual", "0.5", "--keep", "largest",
            "--method", "hash"]
    assert cli.main(argv) == 0
    result = RunRecords(Layout(drop_zone).records("run-0001")).read_result()
    assert result.params.model_dump() == {
        "method": "hash", "hash_algorithm": "dhash", "hash_size": 16, "max_distance": 7, "max_mse": 12.5,
        "max_residual": 0.5, "max_shift_px": 2, "keep": "largest", "max_pixels": small}
    assert {o.status for o in result.files} == {"error"}
    assert all("max_pixels" in (o.error or "") for o in result.files)  # the parameter --max-pixels sets
