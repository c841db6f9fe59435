"""The output folders of a watched folder W (unique/, archive/, the records folder): checked, and remembered.

Each is a single folder name inside W, the three are distinct, and none may be a run folder (a folder of W that
holds files and is not ours). The names in use are remembered in ``W/<records>/outputs.json``, with every name used
before (``retired``), so that no present or past output folder is ever taken for a run, and a command that does
not name them uses the remembered ones. A command that names other folders than the remembered ones is refused
until ``--confirm-new-folders`` says the change is meant: files already moved stay where they are.

A W used before outputs.json existed (a records folder with runs/ but no outputs.json) adopts the names given.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from dedup_engine.errors import InputError
from pydantic import BaseModel, ConfigDict, ValidationError

from .layout import Layout
from .records import atomic_write
from .runs import holds_a_file

log = logging.getLogger("local_runner.outputs")

MEMORY = "outputs.json"
DEFAULTS = {"unique": "unique", "archive": "archive", "records": ".dedup"}
OPTIONS = {"unique": "--unique-dir", "archive": "--archive-dir", "records": "--records-dir"}
CONFIRM = "--confirm-new-folders"


class OutputNames(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unique: str
    archive: str
    records: str
    retired: list[str] = []
    updated_at: dt.datetime

    def current(self) -> dict[str, str]:
        return {"unique": self.unique, "archive": self.archive, "records": self.records}


@dataclass(frozen=True)
class Remembered:
    names: OutputNames | None  # the newest memory, if any
    known: frozenset[str]  # every output or records folder name W has used


def check_name(option: str, name: str) -> str:
    """A single folder name inside W: not empty, no separator, not '.' or '..', no drive, not absolute."""
    bad = (not name or name.strip() != name or name in (".", "..") or "/" in name or "\\" in name or ":" in name
           or "\x00" in name or os.path.isabs(name))
    if bad:
        raise InputError(f"{option} {name!r} must be a single folder name inside the watched folder "
                         "(no path separators, '..', drive or absolute path)")
    return name


def remembered(root: Path) -> Remembered:
    """The names in W's records: every top-level folder of W that holds outputs.json is one of ours."""
    found: list[OutputNames] = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name) if root.is_dir() else []:
        memory = Path(entry.path) / MEMORY
        if not entry.is_dir(follow_symlinks=False) or not memory.is_file():
            continue
        try:
            found.append(OutputNames.model_validate_json(memory.read_bytes()))
        except (OSError, ValidationError) as exc:
            log.warning("%s cannot be read (%s): its folder is still never taken for a run", memory, exc)
            found.append(OutputNames(unique=entry.name, archive=entry.name, records=entry.name,
                                     updated_at=dt.datetime.min.replace(tzinfo=dt.timezone.utc)))
    known = {n for names in found for n in (*names.current().values(), *names.retired)}
    newest = max(found, key=lambda n: n.updated_at, default=None)
    return Remembered(newest, frozenset(known))


def records_name_for_log(root: Path, given: str | None) -> str:
    """The records folder's name for the start-up log, before anything is checked: the one given if it is a single
    name, else the remembered one, else the default. Never raises (the checks come after the log is open)."""
    if given is not None:
        try:
            return check_name(OPTIONS["records"], given)
        except InputError:
            return DEFAULTS["records"]
    try:
        memory = remembered(root)
    except OSError:
        return DEFAULTS["records"]
    return memory.names.records if memory.names else DEFAULTS["records"]


def layout_for(root: Path, unique: str | None = None, archive: str | None = None, records: str | None = None,
               *, confirm: bool = False, remember: bool = False) -> Layout:
    """The layout of W for these options (None: the remembered name, else the default), checked against W and its
    memory. ``remember`` (the runner) writes the names to W's records; ``status`` and ``restore`` only read."""
    memory = remembered(root)
    given = {"unique": unique, "archive": archive, "records": records}
    base = memory.names.current() if memory.names else DEFAULTS
    wanted = {key: check_name(OPTIONS[key], value if value is not None else base[key]) for key, value in given.items()}
    lowered = [name.lower() for name in wanted.values()]
    if len(set(lowered)) < 3:
        raise InputError(f"{_describe(wanted)}: the three output folders must have different names")
    if memory.names is not None and wanted != memory.names.current():
        if not confirm:
            raise InputError(f"{root} was set up with {_describe(memory.names.current())} (see "
                             f"{root / memory.names.records / MEMORY}); this command names {_describe(wanted)}: "
                             f"add {CONFIRM} to the runner to switch (files already moved stay where they are)")
    legacy = memory.names is None and (root / wanted["records"] / "runs").is_dir()
    ours = memory.known | (frozenset(wanted.values()) if legacy else frozenset())
    for key, name in wanted.items():
        if name not in ours:
            _check_not_a_run(root, OPTIONS[key], name, wanted["records"])
    if remember and (memory.names is None or wanted != memory.names.current()):
        retired = sorted(memory.known - set(wanted.values()))
        names = OutputNames(**wanted, retired=retired, updated_at=dt.datetime.now(dt.timezone.utc))
        atomic_write(root / wanted["records"] / MEMORY, names.model_dump_json(indent=2).encode())
        if memory.names is not None:
            log.warning("output folders changed to %s; earlier ones (%s) are never taken for runs",
                        _describe(wanted), ", ".join(retired))
    return Layout(root, wanted["unique"], wanted["archive"], wanted["records"],
                  retired=memory.known - set(wanted.values()))


def _check_not_a_run(root: Path, option: str, name: str, records: str) -> None:
    path = root / name
    if path.exists() and not path.is_dir():
        raise InputError(f"{option} {name!r}: {path} is a file, not a folder: choose another name")
    if path.is_dir() and not name.startswith(".") and holds_a_file(path):  # hidden folders are never runs
        raise InputError(f"{option} {name!r}: {path} holds files that are not the runner's (a run folder?): "
                         "choose a name that is not a run")
    if (root / records / "runs" / name).is_dir():
        raise InputError(f"{option} {name!r} is the name of a run with records: choose another name")


def _describe(names: dict[str, str]) -> str:
    return " ".join(f"{OPTIONS[key]} {names[key]}" for key in ("unique", "archive", "records"))
