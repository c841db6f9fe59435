"""Windows' rules, written down so the deployment files can be checked on Linux: the argument split of
CommandLineToArgvW, what Task Scheduler accepts as task XML (bytes, declaration, schema), and which cmdlets and
parameters Windows PowerShell 5.1 has. Nothing here runs Windows; each rule names its source."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import tree_sitter_powershell
import xmlschema
from tree_sitter import Language, Node, Parser

SCHEMA = Path(__file__).with_name("windows_task_schema.xsd")  # MS-TSCH 2.5, the subset our task uses
NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
SERVICE_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")  # LocalSystem, LocalService, NetworkService


def command_line_to_argv(line: str) -> list[str]:
    """CommandLineToArgvW (shell32), as Wine reimplements it and Microsoft's documentation describes it:
    - the program name ends at the next quote when it starts with one, else at the first space or tab, and
      backslashes in it are literal;
    - then arguments are separated by spaces or tabs outside quotes; 2n backslashes before a quote give n backslashes
      and the quote opens or closes quoting; 2n+1 give n backslashes and a literal quote; backslashes not before a
      quote are literal;
    - consecutive quotes: every third one is a literal quote and quoting ends ("" inside quotes: a literal quote and
      the quoted part ends; this is where the C runtime since 2008 differs, keeping quoting on).
    """
    argv: list[str] = []
    i, n = 0, len(line)
    if line.startswith('"'):
        end = line.find('"', 1)
        argv.append(line[1:end] if end >= 0 else line[1:])
        i = end + 1 if end >= 0 else n
    else:
        while i < n and line[i] not in " \t":
            i += 1
        argv.append(line[:i])
    while i < n and line[i] in " \t":
        i += 1
    if i >= n:
        return argv
    current: list[str] = []
    quotes = backslashes = 0
    while i < n:
        char = line[i]
        if char in " \t" and quotes == 0:
            argv.append("".join(current))
            current, backslashes = [], 0
            while i < n and line[i] in " \t":
                i += 1
            if i >= n:
                return argv
            continue
        if char == "\\":
            current.append(char)
            backslashes += 1
            i += 1
        elif char == '"':
            if backslashes % 2 == 0:
                del current[len(current) - backslashes // 2:]
                quotes += 1
            else:
                del current[len(current) - backslashes // 2 - 1:]
                current.append('"')
            i += 1
            backslashes = 0
            while i < n and line[i] == '"':
                quotes += 1
                if quotes == 3:
                    current.append('"')
                    quotes = 0
                i += 1
            if quotes == 2:
                quotes = 0
        else:
            current.append(char)
            backslashes = 0
            i += 1
    argv.append("".join(current))
    return argv


# --- task XML -------------------------------------------------------------------------------------------------


def task_xml_problems(data: bytes, registered_name: str) -> list[str]:
    """Why Task Scheduler (Register-ScheduledTask on the text, schtasks /XML on the file) would refuse ``data``,
    or run something else than intended; empty when it is fine by every rule written here."""
    if not data.startswith(b"\xff\xfe"):
        return ["not UTF-16 LE with a BOM: schtasks /XML reads UTF-16 LE (or ANSI) only"]
    text = data[2:].decode("utf-16-le")
    declared = re.match(r'<\?xml[^>]*\bencoding="([^"]+)"', text)
    if declared and declared.group(1).upper() not in ("UTF-16", "UTF-16LE"):
        return [f"declares encoding {declared.group(1)}: read as text (UTF-16 in memory) Task Scheduler fails with "
                "'switch from current encoding to specified encoding not supported'"]
    problems = [f"{error.path}: {error.reason}" for error in xmlschema.XMLSchema(SCHEMA).iter_errors(text)]
    if problems:
        return problems
    task = ET.fromstring(text)
    principal = task.find("t:Principals/t:Principal", NS)
    user, logon = principal.findtext("t:UserId", "", NS), principal.findtext("t:LogonType", None, NS)
    if logon is None and user not in SERVICE_SIDS:
        problems.append(f"UserId {user!r} without a LogonType: a service account must be named by its SID "
                        "(S-1-5-18 for SYSTEM), since names are localized")
    if logon is not None and user in SERVICE_SIDS:
        problems.append(f"LogonType {logon} for the service account {user}: a service account has none")
    uri = task.findtext("t:RegistrationInfo/t:URI", None, NS)
    if uri is not None and uri != "\\" + registered_name:
        problems.append(f"URI {uri!r} differs from the registered name {registered_name!r}")
    return problems


# --- PowerShell -----------------------------------------------------------------------------------------------

# The cmdlets (and their parameters) the deployment scripts may use: each exists with these parameters in Windows
# PowerShell 5.1, per Microsoft's reference on learn.microsoft.com (module Microsoft.PowerShell.Management /
# .Utility / .Security 5.1, and ScheduledTasks in the windowsserver2016-ps view, the module of Windows 10 / Server
# 2016). A script that uses anything else fails this table until someone checks the docs and adds it.
CMDLETS_51: dict[str, set[str]] = {
    "ConvertTo-Json": {"InputObject", "Compress", "Depth"},
    "Copy-Item": {"LiteralPath", "Path", "Destination", "Recurse", "Force"},
    "Disable-ScheduledTask": {"TaskName", "TaskPath"},
    "Get-ChildItem": {"LiteralPath", "Path", "Force", "Recurse", "File", "Directory"},
    "Get-Content": {"LiteralPath", "Path", "Raw", "Encoding", "Tail", "TotalCount"},
    "Get-Credential": {"UserName", "Message", "Credential"},
    "Get-Date": set(),
    "Get-ItemProperty": {"LiteralPath", "Path", "Name"},
    "Get-Location": {"PSProvider", "PSDrive"},
    "Get-ScheduledTask": {"TaskName", "TaskPath"},
    "Get-ScheduledTaskInfo": {"TaskName", "TaskPath", "InputObject"},
    "Join-Path": {"Path", "ChildPath"},
    "New-Item": {"ItemType", "Path", "Name", "Value", "Force"},
    "Out-Null": {"InputObject"},
    "Register-ScheduledTask": {"TaskName", "TaskPath", "Xml", "User", "Password", "Force"},
    "Remove-Item": {"LiteralPath", "Path", "Recurse", "Force"},
    "Resolve-Path": {"LiteralPath", "Path"},
    "Select-Object": {"First", "Last", "Property", "ExpandProperty"},
    "Set-ItemProperty": {"LiteralPath", "Path", "Name", "Value", "Type"},
    "Start-ScheduledTask": {"TaskName", "TaskPath"},
    "Start-Sleep": {"Seconds", "Milliseconds"},
    "Stop-ScheduledTask": {"TaskName", "TaskPath"},
    "Test-Path": {"LiteralPath", "Path", "PathType"},
    "Unregister-ScheduledTask": {"TaskName", "TaskPath", "Confirm"},
    "Write-Host": {"Object", "ForegroundColor", "NoNewline"},
}
# about_CommonParameters (5.1): every cmdlet and advanced function takes these
COMMON_PARAMETERS = {"Verbose", "Debug", "ErrorAction", "WarningAction", "InformationAction", "ErrorVariable",
                     "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable"}
# programs the scripts start by name (their own arguments are theirs, not PowerShell parameters)
PROGRAMS = {"icacls.exe", "py"}

_PARSER = Parser(Language(tree_sitter_powershell.language()))


def _walk(node: Node):  # type: ignore[no-untyped-def]
    yield node
    for child in node.children:
        yield from _walk(child)


def parse_errors(source: str) -> list[str]:
    tree = _PARSER.parse(source.encode("utf-8"))
    return [f"line {n.start_point[0] + 1}: {n.text.decode(errors='replace')[:60]!r}"
            for n in _walk(tree.root_node) if n.type == "ERROR" or n.is_missing]


def commands(source: str) -> list[tuple[str | None, list[str]]]:
    """Each command in the script: its name (None when started through a variable) and the parameters given."""
    found = []
    for node in _walk(_PARSER.parse(source.encode("utf-8")).root_node):
        if node.type != "command":
            continue
        name = next((c for c in node.children if c.type in ("command_name", "command_name_expr")), None)
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        params = [c.text.decode().lstrip("-").rstrip(":") for c in (elements.children if elements else [])
                  if c.type == "command_parameter"]
        text = name.text.decode() if name is not None else ""
        found.append((None if text.startswith("$") or not text else text, params))
    return found


def functions_defined(source: str) -> set[str]:
    return set(re.findall(r"(?im)^\s*function\s+([\w-]+)", source))


def unknown_commands(source: str) -> list[str]:
    """Commands or parameters not in the 5.1 table (script functions and listed programs are fine)."""
    own = {f.lower() for f in functions_defined(source)}
    table = {k.lower(): {p.lower() for p in v | COMMON_PARAMETERS} for k, v in CMDLETS_51.items()}
    problems = []
    for name, params in commands(source):
        if name is None or name.lower() in own or name.lower() in PROGRAMS:
            continue
        if name.lower() not in table:
            problems.append(f"{name}: not in the Windows PowerShell 5.1 table")
            continue
        problems += [f"{name} -{p}: no such parameter in 5.1" for p in params if p.lower() not in table[name.lower()]]
    return problems
