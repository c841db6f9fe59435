"""The Windows deployment, checked as Windows would read it (tests/windows_rules.py): the task XML's bytes and
schema, the argument line split by CommandLineToArgvW into exactly the argv our CLI expects, the PowerShell scripts
parsed and held to a Windows PowerShell 5.1 table, the install folder's permissions, the install check, and the
runtime requirements. Nothing here runs Windows."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path, PureWindowsPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from local_runner.cli import build_parser
from local_runner.runs import run_for_path
from windows_rules import NS, command_line_to_argv, commands, parse_errors, task_xml_problems, unknown_commands

ROOT = Path(__file__).parents[1]
DEPLOY = ROOT / "deploy" / "windows"
INSTALL = (DEPLOY / "install.ps1").read_text(encoding="utf-8")
UNINSTALL = (DEPLOY / "uninstall.ps1").read_text(encoding="utf-8")
_spec = importlib.util.spec_from_file_location("task_definition", DEPLOY / "task_definition.py")
td = sys.modules["task_definition"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(td)  # type: ignore[union-attr]

PYTHON = r"C:\ProgramData\image-dedup\.venv\Scripts\python.exe"


def _settings(**changes: object) -> td.TaskSettings:
    base = dict(watch_dir="F:\\Imaging", install_dir=r"C:\ProgramData\image-dedup", python=PYTHON, cwd="C:\\Users\\admin",
                run_depth=2, polling=True)
    return td.TaskSettings(**{**base, **changes})


def _xml(settings: td.TaskSettings, *, check: bool = False) -> bytes:
    return td.task_bytes(td.render(td.read_template(), settings, check=check))


def _argv_as_started(task: bytes) -> list[str]:
    """The argv python.exe gets: Task Scheduler starts "Command" Arguments, split by CommandLineToArgvW."""
    action = ET.fromstring(task[2:].decode("utf-16-le")).find("t:Actions/t:Exec", NS)
    line = f'"{action.findtext("t:Command", "", NS)}" {action.findtext("t:Arguments", "", NS)}'
    return command_line_to_argv(line)


# --- the task XML: bytes, declaration, schema (items 1, 2, 3, and the URI) ----------------------------------------


def test_the_template_is_utf16_le_with_a_bom_and_declares_it() -> None:
    data = (DEPLOY / "image-dedup-watcher.xml").read_bytes()
    assert data.startswith(b"\xff\xfe<\x00?\x00x\x00m\x00l\x00")
    assert data[2:].decode("utf-16-le").startswith('<?xml version="1.0" encoding="UTF-16"?>\r\n')


@pytest.mark.parametrize("user", ["SYSTEM", r"NT AUTHORITY\SYSTEM", "NT AUTHORITY\\NETWORK SERVICE", r"LAB\svc-imaging"])
@pytest.mark.parametrize("check", [False, True])
def test_every_rendered_task_passes_the_task_scheduler_rules(user: str, check: bool) -> None:
    settings = _settings(user=user, extra_args=["--include", "Proj*"])
    name = settings.task_name + (" (install check)" if check else "")
    assert task_xml_problems(_xml(settings, check=check), name) == []


def test_system_is_named_by_sid_without_a_logon_type_and_an_account_logs_on_by_password() -> None:
    principal = ET.fromstring(_xml(_settings())[2:].decode("utf-16-le")).find("t:Principals/t:Principal", NS)
    assert principal.findtext("t:UserId", None, NS) == "S-1-5-18" and principal.find("t:LogonType", NS) is None
    principal = ET.fromstring(_xml(_settings(user=r"LAB\svc"))[2:].decode("utf-16-le")).find("t:Principals/t:Principal", NS)
    assert principal.findtext("t:UserId", None, NS) == r"LAB\svc"
    assert principal.findtext("t:LogonType", None, NS) == "Password"


def test_the_restart_count_fits_an_unsigned_byte_and_the_uri_is_the_registered_name() -> None:
    task = ET.fromstring(_xml(_settings())[2:].decode("utf-16-le"))
    assert 1 <= int(task.findtext("t:Settings/t:RestartOnFailure/t:Count", "", NS)) <= 255
    assert task.findtext("t:RegistrationInfo/t:URI", None, NS) == "\\image-dedup watcher"
    assert task.findtext("t:Settings/t:MultipleInstancesPolicy", None, NS) == "IgnoreNew"
    assert task.findtext("t:Triggers/t:TimeTrigger/t:Repetition/t:Interval", None, NS) == "PT5M"
    assert task.findtext("t:Triggers/t:BootTrigger/t:Enabled", None, NS) == "true"
    # the watcher runs for ever: no time limit (the default stops a task after 72 hours), batteries or not
    assert task.findtext("t:Settings/t:ExecutionTimeLimit", None, NS) == "PT0S"
    assert task.findtext("t:Settings/t:DisallowStartIfOnBatteries", None, NS) == "false"


def _variant(old: str, new: str, *, encoding: str = "utf-16") -> bytes:
    text = td.render(td.read_template(), _settings(user=r"LAB\svc")).replace(old, new, 1)
    assert old != new and text.count(new) >= 1
    return td.task_bytes(text) if encoding == "utf-16" else text.encode(encoding)


@pytest.mark.parametrize("data, reason", [
    (lambda: _variant("UTF-16", "UTF-8", encoding="utf-8"), "not UTF-16 LE with a BOM"),
    (lambda: _variant('encoding="UTF-16"', 'encoding="UTF-8"'), "switch from current encoding"),
    (lambda: _variant("<LogonType>Password", "<LogonType>ServiceAccount"), "value must be one of"),
    (lambda: _variant("<Count>10</Count>", "<Count>999</Count>"), "0 <= x < 256"),
    (lambda: _variant("<Interval>PT5M</Interval>", "<Interval>PT30S</Interval>"), "greater or equal"),
    (lambda: _variant("<Enabled>true</Enabled>\n      <StartBoundary>2026-01-01T00:00:00</StartBoundary>",
                      "<StartBoundary>2026-01-01T00:00:00</StartBoundary>\n      <Enabled>true</Enabled>"),
     "Unexpected child"),
    (lambda: _variant("<Priority>7</Priority>", "<Priority>11</Priority>"), "less than or equal than 10"),
    (lambda: _variant('<Actions Context="Author">', '<Actions Context="Nobody">'), "Nobody"),
    (lambda: _variant("\n      <LogonType>Password</LogonType>", "").replace(
        "LAB\\svc".encode("utf-16-le"), "NT AUTHORITY\\SYSTEM".encode("utf-16-le")), "must be named by its SID"),
    (lambda: _variant("<URI>\\image-dedup watcher</URI>", "<URI>\\image-dedup\\watcher</URI>"), "differs from"),
])
def test_the_rules_reject_what_task_scheduler_rejects(data, reason: str) -> None:
    problems = task_xml_problems(data(), "image-dedup watcher")
    assert problems and any(reason in p for p in problems), problems


def test_the_old_definition_is_rejected() -> None:
    """Today's file before issue 16: UTF-8, LogonType ServiceAccount, Count 999 (as the old install.ps1 filled it)."""
    old = (Path(__file__).parent / "data" / "windows" / "old-image-dedup-watcher.xml").read_text(encoding="utf-8")
    problems = task_xml_problems(old.encode("utf-8"), "image-dedup watcher")
    assert problems == ["not UTF-16 LE with a BOM: schtasks /XML reads UTF-16 LE (or ANSI) only"]
    problems = task_xml_problems(td.task_bytes(old.replace('encoding="UTF-8"', 'encoding="UTF-16"')), "image-dedup watcher")
    assert any("ServiceAccount" in p or "value must be one of" in p for p in problems)
    assert any("0 <= x < 256" in p for p in problems)


# --- the argument line (item 4) ----------------------------------------------------------------------------------


def test_the_real_split_merges_arguments_after_a_quoted_trailing_backslash() -> None:
    """What the old template did: "{{WATCH_DIR}}" with F:\\Imaging\\ ends in \\" and swallows the rest."""
    assert command_line_to_argv(r'python.exe -m local_runner "F:\Imaging\" --run-depth 2 --no-progress') == \
        ["python.exe", "-m", "local_runner", 'F:\\Imaging" --run-depth 2 --no-progress']
    assert command_line_to_argv(r'"C:\Program Files\p.exe" a\\b "c d" e\"f "g\\" ""') == \
        [r"C:\Program Files\p.exe", r"a\\b", "c d", 'e"f', "g\\", ""]
    assert command_line_to_argv('p.exe "a""b" c') == ["p.exe", 'a"b c']  # shell32: "" ends the quoted part
    assert command_line_to_argv(r'"C:\a\"b c') == ["C:\\a\\", "b", "c"]  # the program name has no escapes


@pytest.mark.parametrize("watch, cwd, expected", [
    ("F:\\Imaging\\", "C:\\", "F:\\Imaging"),
    ("F:\\", "C:\\", "F:\\"),
    (r"F:\Lab Data\Imaging 2\\", "C:\\", r"F:\Lab Data\Imaging 2"),
    ("\\\\nas\\Imaging\\", "C:\\", "\\\\nas\\Imaging\\"),
    ("D:\\Bilder\\Müller Ωμέγα 画像\\", "C:\\", "D:\\Bilder\\Müller Ωμέγα 画像"),
    (r"..\Imaging", r"E:\lab\scripts", r"E:\lab\Imaging"),
    ("Imaging", "E:\\", r"E:\Imaging"),
])
def test_the_task_gives_the_cli_exactly_its_arguments(watch: str, cwd: str, expected: str) -> None:
    settings = _settings(watch_dir=watch, cwd=cwd, extra_args=["--include", 'Proj "A" *', "--settle-seconds=60"])
    argv = _argv_as_started(_xml(settings))
    assert argv == [PYTHON, *settings.watcher_arguments()]
    assert argv[1:4] == ["-I", "-m", "local_runner"]
    args = build_parser().parse_args(argv[4:])
    assert str(args.watch_dir) == expected
    assert str(args.log_file) == expected.rstrip("\\") + r"\.dedup\logs\local_runner.log"
    assert args.run_depth == 2 and args.polling and args.no_progress and not args.once
    assert args.include == ['Proj "A" *'] and args.settle_seconds == 60


def test_the_check_runs_status_with_the_watchers_depth_and_folders() -> None:
    settings = _settings(watch_dir="F:\\", extra_args=["--include", "Proj *", "--records-dir", ".d", "--polling"])
    argv = _argv_as_started(_xml(settings, check=True))
    assert argv[1:] == ["-I", "-m", "local_runner", "status", "F:\\", "--run-depth", "2",
                        "--include", "Proj *", "--records-dir", ".d"]


@given(st.lists(st.text(alphabet='ab \t"\\ü', max_size=12), max_size=5))
def test_quoting_round_trips_through_the_real_split(arguments: list[str]) -> None:
    assert command_line_to_argv("p.exe " + td.command_line(arguments)) == ["p.exe", *arguments]


def test_paths_that_cannot_work_are_refused_with_what_to_do() -> None:
    for bad in ("F:Imaging", "", 'F:\\Ima"ging'):
        with pytest.raises(td.SettingsError, match="full path|usable Windows path"):
            td.full_path(bad, "C:\\Users\\admin")
    with pytest.raises(td.SettingsError, match="RunDepth"):
        td.render(td.read_template(), _settings(run_depth=0))


def test_render_command_writes_both_definitions_from_the_environment(tmp_path: Path) -> None:
    settings = {"watch_dir": "F:\\Imaging\\", "install_dir": r"C:\ProgramData\image-dedup", "python": PYTHON,
                "cwd": "C:\\", "run_depth": 2, "user": "SYSTEM", "polling": False, "extra_args": [],
                "task_name": "image-dedup watcher"}
    script = [sys.executable, "-I", "-B", str(DEPLOY / "task_definition.py"), "render", str(tmp_path)]
    done = subprocess.run(script, env={**os.environ, td.SETTINGS_VARIABLE: json.dumps(settings)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["F:\\Imaging", r"F:\Imaging\.dedup\logs\local_runner.log"]
    assert task_xml_problems((tmp_path / "watcher.xml").read_bytes(), "image-dedup watcher") == []
    assert task_xml_problems((tmp_path / "check.xml").read_bytes(), "image-dedup watcher (install check)") == []
    bad = subprocess.run(script, env={**os.environ, td.SETTINGS_VARIABLE: '{"watch_dir": "x", "bogus": 1}'},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "unknown settings ['bogus']" in bad.stderr


# --- the Python the task uses (item 8) ----------------------------------------------------------------------------


def test_a_python_installed_for_one_user_is_refused() -> None:
    profiles = r"C:\Users"
    assert "for one user" in td.python_location_problem(r"C:\Users\admin\AppData\Local\Programs\Python\Python312",
                                                       (3, 12), profiles)
    store = r"C:\Program Files\WindowsApps\PythonSoftwareFoundation.Python.3.12_3.12.1_x64__qbz5n2kfra8p0"
    assert "for one user" in td.python_location_problem(store, (3, 12), profiles)
    assert "too old" in td.python_location_problem(r"C:\Program Files\Python39", (3, 9), profiles)
    assert td.python_location_problem(r"C:\Program Files\Python312", (3, 12), profiles) is None
    assert td.python_location_problem(r"C:\UsersPython\Python312", (3, 12), profiles) is None


# --- the PowerShell scripts -----------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [INSTALL, UNINSTALL], ids=["install", "uninstall"])
def test_the_scripts_parse_and_use_only_windows_powershell_51_commands(script: str) -> None:
    assert parse_errors(script) == []
    assert unknown_commands(script) == []
    assert script.startswith("#Requires -Version 5.1\n#Requires -RunAsAdministrator\n")


def test_the_powershell_checks_catch_mistakes() -> None:
    assert parse_errors("if ($x { Write-Host 1 }")
    assert unknown_commands("Get-Content -AsByteStream -LiteralPath a") == ["Get-Content -AsByteStream: no such parameter in 5.1"]
    assert unknown_commands("Register-ScheduledTask -TaskName a -Xml $x -RunAsAdmin") == \
        ["Register-ScheduledTask -RunAsAdmin: no such parameter in 5.1"]
    assert unknown_commands("Invoke-RestMethod -Uri x") == ["Invoke-RestMethod: not in the Windows PowerShell 5.1 table"]
    assert unknown_commands("function Do-It { }\nDo-It -Anything 1\n& $python -m x") == []


def _icacls_lines(script: str) -> list[str]:
    return [line.strip() for line in script.splitlines() if line.strip().startswith("& icacls.exe")]


def test_the_install_folder_is_admin_only_and_a_precreated_folder_is_taken_back() -> None:
    lines = _icacls_lines(INSTALL)
    assert any("/setowner \"*S-1-5-32-544\" /T" in line for line in lines)  # owner: Administrators
    assert any("/reset /T" in line for line in lines)  # a user's explicit permissions inside are dropped
    grants = next(line for line in lines if "/inheritance:r" in line)  # no inherited "Users may write"
    assert re.findall(r'"\*(S-[\d-]+):\(OI\)\(CI\)(\w+)"', grants) == \
        [("S-1-5-32-544", "F"), ("S-1-5-18", "F"), ("S-1-5-32-545", "RX")]
    assert "Set-AdminOnlyAcl $InstallDir" in INSTALL and "Set-AdminOnlyAcl $logDir $User" in INSTALL
    assert INSTALL.index("Set-AdminOnlyAcl $InstallDir") < INSTALL.index("Copy-Item")
    assert "is not an image-dedup install" in INSTALL  # an unrelated folder is refused, not taken over


def test_the_task_runs_isolated_python_from_the_admin_only_folder() -> None:
    task = ET.fromstring(_xml(_settings())[2:].decode("utf-16-le"))
    assert task.findtext("t:Actions/t:Exec/t:WorkingDirectory", None, NS) == r"C:\ProgramData\image-dedup"
    assert task.findtext("t:Actions/t:Exec/t:Arguments", "", NS).startswith("-I -m local_runner ")
    for name, params in commands(INSTALL):
        if name is None or name == "py":  # every python started by the installer is isolated too
            assert params[:1] == ["I"], (name, params)


def test_an_upgrade_stops_the_task_first_and_the_install_is_recorded_for_uninstall() -> None:
    assert INSTALL.index("Stop-ScheduledTask -TaskName $TaskName") < INSTALL.index("Remove-Item -Recurse")
    assert 'Set-ItemProperty -LiteralPath $registryKey -Name "InstallDir"' in INSTALL
    assert "$InstallDir = $record.InstallDir" in UNINSTALL and "$record.TaskName" in UNINSTALL


def test_python_is_checked_before_use_and_only_runtime_requirements_are_installed() -> None:
    assert INSTALL.index("check-python") < INSTALL.index("-m venv")
    installs = [line for line in INSTALL.splitlines() if "pip install" in line]
    assert installs and all("requirements.txt" not in line for line in installs)
    assert any('"requirements-runtime.txt"' in line for line in installs)


def test_registration_reads_the_utf16_file_as_text_and_the_check_runs_as_the_task_account() -> None:
    register = INSTALL[INSTALL.index("function Register-TaskFromFile"):]
    assert "Get-Content -Raw -Encoding Unicode -LiteralPath $File" in register
    check, watcher = INSTALL.index('Register-TaskFromFile $checkName'), INSTALL.index('Register-TaskFromFile $TaskName')
    assert check < INSTALL.index("Start-ScheduledTask -TaskName $checkName") < watcher
    assert "local_runner status" not in INSTALL.split("Write-Host \"Installed.")[0]  # never as the admin


# --- requirements (item 8) -------------------------------------------------------------------------------------


def test_the_instrument_pc_gets_runtime_requirements_only() -> None:
    runtime = (ROOT / "requirements-runtime.txt").read_text()
    names = {line.split("==")[0].split("[")[0].lower() for line in runtime.splitlines() if "==" in line}
    assert {"pydantic", "watchdog", "boto3", "tqdm", "opencv-python-headless"} <= names
    assert not names & {"pytest", "moto", "py-spy", "hypothesis", "ts-sdk", "psutil", "xmlschema", "tree-sitter"}
    development = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-r requirements-runtime.txt" in development and "-e ." in development


def test_windows_paths_give_the_same_run_names() -> None:
    root = PureWindowsPath(r"F:\Imaging")
    event = PureWindowsPath(r"F:\Imaging\ProjA\run-12\sub\img 0001.bmp")
    assert run_for_path(root, event, 2) == "ProjA/run-12"  # type: ignore[arg-type]
    assert run_for_path(root, PureWindowsPath(r"F:\Imaging\ProjA"), 2) is None  # type: ignore[arg-type]
    assert run_for_path(root, PureWindowsPath(r"G:\Other\ProjA\run-12\a.bmp"), 2) is None  # type: ignore[arg-type]
    assert event.relative_to(root).as_posix() == "ProjA/run-12/sub/img 0001.bmp"
