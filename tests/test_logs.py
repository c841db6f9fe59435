"""Errors at start reach a file a person will find: a scheduled task has no console, and Task Scheduler discards
stderr. The watched folder missing (drive or share not mounted yet) and bad arguments are written to the log file,
or to the fallback log when the log file's folder cannot be made, before exit 2."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

from local_runner import cli, logs


def _fallback() -> Path:
    return Path(logs.fallback_log_file())  # conftest points XDG_STATE_HOME at a temporary folder


def test_fallback_is_under_programdata_on_windows_and_the_state_folder_elsewhere(tmp_path: Path) -> None:
    on_windows = logs.fallback_log_file("Windows", {"ProgramData": r"D:\ProgramData"})
    assert on_windows == PureWindowsPath(r"D:\ProgramData\image-dedup\logs\local_runner.log")
    assert logs.fallback_log_file("Windows", {}) == PureWindowsPath(r"C:\ProgramData\image-dedup\logs\local_runner.log")
    assert logs.fallback_log_file("Linux", {"XDG_STATE_HOME": str(tmp_path)}) == \
        tmp_path / "image-dedup" / "logs" / "local_runner.log"
    assert logs.fallback_log_file("Linux", {"HOME": str(tmp_path)}) == \
        tmp_path / ".local" / "state" / "image-dedup" / "logs" / "local_runner.log"


def test_an_unmounted_watch_folder_is_logged_to_the_fallback_and_not_created(tmp_path: Path, capsys) -> None:
    watch = tmp_path / "Imaging"  # the drive is not mounted yet: the folder is not there
    log_file = watch / ".dedup" / "logs" / "local_runner.log"  # as the scheduled task passes it
    assert cli.main([str(watch), "--once", "--log-file", str(log_file), "--no-progress"]) == 2
    assert not watch.exists(), "making the log folder must not create the watched folder"
    text = _fallback().read_text(encoding="utf-8")
    assert f"cannot write the log file {log_file}" in text and "not mounted" in text
    assert f"watched folder {watch} does not exist" in text and "ERROR" in text
    assert len(capsys.readouterr().err.strip().splitlines()) == 1  # the console still gets one line


def test_a_log_folder_that_cannot_be_made_falls_back(tmp_path: Path) -> None:
    (tmp_path / "W").mkdir()
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the log folder should be")  # mkdir fails, as on an absent drive letter
    code = cli.main([str(tmp_path / "W"), "--once", "--max-residual", "-1", "--log-file",
                     str(blocker / "logs" / "x.log")])
    assert code == 2
    text = _fallback().read_text(encoding="utf-8")
    assert "its folder cannot be made" in text and "invalid --max-residual" in text


def test_a_bad_value_is_written_to_the_log_file_in_the_watched_folder(tmp_path: Path) -> None:
    assert cli.main([str(tmp_path), "--once", "--max-residual", "-1"]) == 2
    text = (tmp_path / ".dedup" / "logs" / "local_runner.log").read_text(encoding="utf-8")
    assert "exit 2: InputError: invalid --max-residual" in text
    assert not _fallback().exists()


def test_a_usage_error_goes_to_the_given_log_file_when_its_folder_exists(tmp_path: Path, capsys) -> None:
    log_file = tmp_path / "logs" / "local_runner.log"
    log_file.parent.mkdir()
    assert cli.main([str(tmp_path), "--run-depth", "two", "--log-file", str(log_file)]) == 2
    assert "invalid int value: 'two'" in log_file.read_text(encoding="utf-8")
    assert "invalid int value" in capsys.readouterr().err  # argparse's own message is still printed
    assert cli.main([str(tmp_path), "--bogus"]) == 2  # no --log-file: the fallback
    assert "unrecognized arguments: --bogus" in _fallback().read_text(encoding="utf-8")


def test_a_usage_error_does_not_create_the_log_folder(tmp_path: Path) -> None:
    log_file = tmp_path / "W" / ".dedup" / "logs" / "local_runner.log"
    assert cli.main([str(tmp_path / "W"), "--bogus", f"--log-file={log_file}"]) == 2
    assert not (tmp_path / "W").exists()
    text = _fallback().read_text(encoding="utf-8")
    assert f"cannot write the log file {log_file}" in text and "unrecognized arguments: --bogus" in text
