"""The Task Scheduler definitions of the image-dedup watcher and of its install check, for install.ps1.

    python -I -B task_definition.py check-python   this interpreter: 3.10+, installed for all users (exit 1 if not)
    python -I -B task_definition.py render DIR     write watcher.xml and check.xml into DIR (UTF-16 LE, BOM);
                                                   print the watched folder, the log file, the command

install.ps1 hands ``render`` its settings as JSON in the environment variable IMAGE_DEDUP_TASK: an environment
variable carries every character exactly, while Windows PowerShell 5.1 passes arguments to a program without
escaping quotes or a trailing backslash (the very defect this module exists to avoid). Standard library only.

The argument line is built for the rules programs use to split it (CommandLineToArgvW, and the C runtime that
python.exe uses, which agree for every line this module writes): an argument with a space, a tab or a quote is
quoted; backslashes are doubled only where they precede a quote, including the closing one, so ``F:\\Imaging\\``
stays one argument. See "Everyone quotes command line arguments the wrong way" (Microsoft, 2011).
"""

from __future__ import annotations

import json
import ntpath
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "image-dedup-watcher.xml"
SETTINGS_VARIABLE = "IMAGE_DEDUP_TASK"
WELL_KNOWN_ACCOUNTS = {  # the accounts Task Scheduler runs without a password; the XML names them by SID
    "S-1-5-18": ("SYSTEM", "NT AUTHORITY\\SYSTEM", "LOCALSYSTEM", "LOCAL SYSTEM"),
    "S-1-5-19": ("LOCAL SERVICE", "NT AUTHORITY\\LOCAL SERVICE", "LOCALSERVICE"),
    "S-1-5-20": ("NETWORK SERVICE", "NT AUTHORITY\\NETWORK SERVICE", "NETWORKSERVICE"),
}
STATUS_OPTIONS = ("--include", "--settle-seconds", "--unique-dir", "--archive-dir", "--records-dir")


class SettingsError(ValueError):
    """A setting install.ps1 passed cannot make a working task; the message says what to change."""


def quote_argument(argument: str) -> str:
    """``argument`` as it must appear on a Windows command line to come back unchanged from the split."""
    if argument and not re.search(r'[ \t\n\v"]', argument):
        return argument
    quoted, backslashes = ['"'], 0
    for char in argument:
        if char == "\\":
            backslashes += 1
            continue
        quoted.append("\\" * (backslashes * 2 + 1) + '"' if char == '"' else "\\" * backslashes + char)
        backslashes = 0
    quoted.append("\\" * (backslashes * 2) + '"')
    return "".join(quoted)


def command_line(arguments: list[str]) -> str:
    return " ".join(quote_argument(a) for a in arguments)


def full_path(path: str, base: str) -> str:
    """``path`` made absolute against ``base`` (the installer's current folder), normalised the Windows way."""
    if not path or '"' in path:
        raise SettingsError(f"{path!r} is not a usable Windows path: give the folder's full path, e.g. F:\\Imaging")
    resolved = ntpath.normpath(ntpath.join(base, path))
    if not re.match(r"^([A-Za-z]:\\|\\\\[^\\]+\\[^\\]+)", resolved):
        raise SettingsError(f"{path!r} does not resolve to a full path (got {resolved!r}): give the drive and folder, "
                            "e.g. F:\\Imaging, or a share, e.g. \\\\nas\\Imaging")
    return resolved


def account_sid(user: str) -> str | None:
    """The SID of a built-in service account named in any of its usual spellings; None for any other account."""
    wanted = user.strip().upper()
    for sid, names in WELL_KNOWN_ACCOUNTS.items():
        if wanted == sid or wanted in names:
            return sid
    return None


@dataclass(frozen=True)
class TaskSettings:
    watch_dir: str
    install_dir: str
    python: str  # the venv's python.exe
    cwd: str  # the installer's current folder, to resolve relative paths as PowerShell did
    run_depth: int = 1
    user: str = "SYSTEM"
    polling: bool = False
    extra_args: list[str] = field(default_factory=list)
    task_name: str = "image-dedup watcher"

    @classmethod
    def from_json(cls, text: str) -> TaskSettings:
        data = json.loads(text)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise SettingsError(f"unknown settings {sorted(unknown)}")
        extra = data.get("extra_args") or []
        data["extra_args"] = [extra] if isinstance(extra, str) else list(extra)
        return cls(**data)

    @property
    def watch(self) -> str:
        return full_path(self.watch_dir, self.cwd)

    @property
    def log_file(self) -> str:
        return ntpath.join(self.watch, ".dedup", "logs", "local_runner.log")

    def watcher_arguments(self) -> list[str]:
        """-I: isolated mode, so no current folder, PYTHON* variable or user site-packages is ever imported."""
        polling = ["--polling"] if self.polling else []
        return ["-I", "-m", "local_runner", self.watch, "--run-depth", str(self.run_depth),
                "--log-file", self.log_file, "--no-progress", *polling, *self.extra_args]

    def check_arguments(self) -> list[str]:
        """``status`` with the watcher's depth and the layout options among its extra arguments."""
        kept, args = [], self.extra_args
        for i, arg in enumerate(args):
            name = arg.split("=", 1)[0]
            if name in STATUS_OPTIONS:
                kept += [arg] if "=" in arg else args[i:i + 2]
        return ["-I", "-m", "local_runner", "status", self.watch, "--run-depth", str(self.run_depth), *kept]


def render(template: str, settings: TaskSettings, *, check: bool = False) -> str:
    """The task XML (text) for the watcher, or for the one-shot install check (same account, no triggers)."""
    if settings.run_depth < 1:
        raise SettingsError(f"-RunDepth {settings.run_depth}: run folders are at least 1 level under the watched folder")
    sid = account_sid(settings.user)
    name = settings.task_name + (" (install check)" if check else "")
    values = {
        "URI": "\\" + name, "WATCH_DIR": settings.watch, "LOG_FILE": settings.log_file,
        "USER_ID": sid or settings.user, "LOGON_TYPE": "Password",
        "PYTHON": full_path(settings.python, settings.cwd), "INSTALL_DIR": full_path(settings.install_dir, settings.cwd),
        "ARGUMENTS": command_line(settings.check_arguments() if check else settings.watcher_arguments()),
    }
    for key in ("PYTHON", "INSTALL_DIR"):
        if len(values[key]) > 260:
            raise SettingsError(f"{values[key]} is longer than the 260 characters a task's path may have")
    text = template
    if sid:  # a service account logs on without a password; the schema has no LogonType for it
        text = re.sub(r"\n[ \t]*<LogonType>\{\{LOGON_TYPE\}\}</LogonType>", "", text)
    if check:
        text = re.sub(r"\n[ \t]*<Triggers>.*?</Triggers>", "", text, flags=re.S)
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", escape(value))
    left = re.findall(r"\{\{\w+\}\}", text)
    if left:
        raise SettingsError(f"placeholders left unfilled: {left}")
    return text


def read_template(path: Path = TEMPLATE) -> str:
    data = path.read_bytes()
    if not data.startswith(b"\xff\xfe"):
        raise SettingsError(f"{path} must be UTF-16 LE with a BOM (as Task Scheduler exports it)")
    return data.decode("utf-16").replace("\r\n", "\n")


def task_bytes(text: str) -> bytes:
    """What Register-ScheduledTask (read back as text) and schtasks /XML accept: UTF-16 LE, BOM, CRLF."""
    return b"\xff\xfe" + text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-16-le")


def python_location_problem(base_prefix: str, version: tuple[int, int], profiles_dir: str) -> str | None:
    """Why a Python installed at ``base_prefix`` cannot serve a task run by another account; None if it can."""
    if version < (3, 10):
        return f"Python {version[0]}.{version[1]} is too old: install Python 3.10 or later"
    where = ntpath.normcase(ntpath.normpath(base_prefix))
    profiles = ntpath.normcase(ntpath.normpath(profiles_dir))
    if where == profiles or where.startswith(profiles + "\\") or "\\windowsapps\\" in where + "\\":
        return (f"Python at {base_prefix} is installed for one user (in a profile or from the Store), which the "
                "task's account may not reach: install it from python.org with 'Install for all users' and pass "
                "-Python 'C:\\Program Files\\Python3xx\\python.exe'")
    return None


def _profiles_dir() -> str:
    import winreg  # Windows only: where user profiles live (usually C:\Users)

    key = r"SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList"
    with winreg.OpenKey(winreg.HKEY_LOCAL_MACHINE, key) as handle:
        value, _ = winreg.QueryValueEx(handle, "ProfilesDirectory")
    return os.path.expandvars(value)


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    try:
        if command == "check-python":
            problem = python_location_problem(sys.base_prefix, sys.version_info[:2], _profiles_dir())
            print(problem or sys.base_prefix)
            return 1 if problem else 0
        if command == "render":
            settings = TaskSettings.from_json(os.environ[SETTINGS_VARIABLE])
            out = Path(argv[1])  # the install folder, given by install.ps1 without a trailing backslash
            template = read_template()
            (out / "watcher.xml").write_bytes(task_bytes(render(template, settings)))
            (out / "check.xml").write_bytes(task_bytes(render(template, settings, check=True)))
            print(settings.watch, settings.log_file, sep="\n")  # install.ps1 reads these two lines, then shows the third
            print(f"{full_path(settings.python, settings.cwd)} {command_line(settings.watcher_arguments())}")
            return 0
    except (SettingsError, KeyError, IndexError, TypeError, json.JSONDecodeError) as exc:
        print(f"task_definition: {exc}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
