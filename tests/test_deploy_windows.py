"""The Windows deployment files: the Task Scheduler definition is valid, does what the README promises, and its
command line is one our CLI accepts; Windows paths map onto run names and records as they do on POSIX."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath

from local_runner.cli import build_parser
from local_runner.runs import run_for_path

DEPLOY = Path(__file__).parents[1] / "deploy" / "windows"
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def _filled(**values: str) -> ET.Element:
    text = (DEPLOY / "image-dedup-watcher.xml").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    assert "{{" not in text, "a placeholder install.ps1 does not fill"
    return ET.fromstring(text.encode("utf-8"))


def _windows_argv(command_line: str) -> list[str]:
    """Split like CommandLineToArgvW does for arguments without embedded quotes."""
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', command_line)]


VALUES = dict(PYTHON=r"C:\ProgramData\image-dedup\.venv\Scripts\python.exe", WATCH_DIR=r"F:\Imaging", RUN_DEPTH="2",
              LOG_FILE=r"F:\Imaging\.dedup\logs\local_runner.log", INSTALL_DIR=r"C:\ProgramData\image-dedup",
              USER=r"NT AUTHORITY\SYSTEM", LOGON_TYPE="ServiceAccount", EXTRA_ARGS=" --polling")


def test_task_starts_at_boot_restarts_and_never_runs_twice() -> None:
    task = _filled(**VALUES)
    assert task.find("t:Triggers/t:BootTrigger/t:Enabled", NS).text == "true"
    assert task.find("t:Triggers/t:TimeTrigger/t:Repetition/t:Interval", NS).text == "PT5M"
    settings = task.find("t:Settings", NS)
    assert settings.find("t:MultipleInstancesPolicy", NS).text == "IgnoreNew"
    assert settings.find("t:ExecutionTimeLimit", NS).text == "PT0S"
    assert settings.find("t:RestartOnFailure/t:Count", NS).text == "999"
    assert settings.find("t:DisallowStartIfOnBatteries", NS).text == "false"
    principal = task.find("t:Principals/t:Principal", NS)
    assert principal.find("t:LogonType", NS).text in ("ServiceAccount", "Password")  # no logged-on user needed


def test_task_command_line_is_accepted_by_the_cli() -> None:
    task = _filled(**VALUES)
    action = task.find("t:Actions/t:Exec", NS)
    argv = _windows_argv(action.find("t:Arguments", NS).text)
    assert argv[:2] == ["-m", "local_runner"]
    args = build_parser().parse_args(argv[2:])
    assert PureWindowsPath(str(args.watch_dir)) == PureWindowsPath(r"F:\Imaging")
    assert args.run_depth == 2 and args.polling and args.no_progress and not args.once
    assert PureWindowsPath(str(args.log_file)).name == "local_runner.log"


def test_install_script_fills_every_placeholder() -> None:
    xml_placeholders = set(re.findall(r"\{\{(\w+)\}\}", (DEPLOY / "image-dedup-watcher.xml").read_text()))
    script = (DEPLOY / "install.ps1").read_text()
    assert xml_placeholders == set(re.findall(r'"\{\{(\w+)\}\}" =', script))
    assert "Register-ScheduledTask" in script and "Unregister-ScheduledTask" in (DEPLOY / "uninstall.ps1").read_text()


def test_windows_paths_give_the_same_run_names() -> None:
    root = PureWindowsPath(r"F:\Imaging")
    event = PureWindowsPath(r"F:\Imaging\ProjA\run-12\sub\img 0001.bmp")
    assert run_for_path(root, event, 2) == "ProjA/run-12"  # type: ignore[arg-type]
    assert run_for_path(root, PureWindowsPath(r"F:\Imaging\ProjA"), 2) is None  # type: ignore[arg-type]
    assert run_for_path(root, PureWindowsPath(r"G:\Other\ProjA\run-12\a.bmp"), 2) is None  # type: ignore[arg-type]
    assert event.relative_to(root).as_posix() == "ProjA/run-12/sub/img 0001.bmp"
