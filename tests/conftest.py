from __future__ import annotations

import json
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


def load_script(path: Path, name: str):  # type: ignore[no-untyped-def]
    """A script of bench/ or reliability/ imported as a module (they are not packages)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def engine_data() -> Path:
    return DATA / "engine"


@pytest.fixture(scope="session")
def engine_truth(engine_data: Path) -> dict:
    return json.loads((engine_data / "truth.json").read_text())


@pytest.fixture(scope="session")
def bad_inputs() -> Path:
    return DATA / "bad-inputs"


@pytest.fixture(scope="session")
def moto_server():
    """One real moto server over HTTP on 127.0.0.1 for the session; tests use their own buckets."""
    from local_runner.s3_server import LocalS3

    with LocalS3(bucket=None) as server:
        yield server


@pytest.fixture
def bucket(moto_server, request) -> str:
    import re

    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-") + "-b"
    client = moto_server.client()
    client.create_bucket(Bucket=name)
    moto_server.bucket = name
    return name


class Killed(BaseException):
    """A kill -9 stand-in: not an Exception, so nothing in the code under test can catch it."""


def kill_mover_at_step(monkeypatch, step: int) -> None:
    """Make the mover's ``step``-th state-changing file-system call raise Killed (undo with monkeypatch.undo())."""
    from local_runner import mover

    calls = {"n": 0}

    def at(self, name: str) -> None:  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == step:
            raise Killed(name)

    monkeypatch.setattr(mover.FileOps, "step", at)


def tree_digest(root: Path, *, skip: tuple[str, ...] = (".dedup",)) -> dict[str, str]:
    """sha256 of every regular file below ``root`` (relative POSIX path -> digest), our records left out."""
    import hashlib

    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and not rel.split("/")[0] in skip:
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.fixture(autouse=True)
def fallback_log_in_tmp(tmp_path_factory, monkeypatch) -> None:
    """A start-up error with no usable log folder goes to the fallback log: keep it out of the home folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True)
def no_leaked_threads_or_processes():
    """Every test stops the threads and processes it starts (watchdog observers, pools, proxies)."""
    import threading
    import time

    import psutil

    before_threads = set(threading.enumerate())
    me = psutil.Process()
    before_children = {p.pid for p in me.children(recursive=True)}
    yield
    deadline = time.monotonic() + 5
    while True:
        threads = [t for t in threading.enumerate() if t not in before_threads and t.is_alive()]
        children = [p for p in me.children(recursive=True) if p.pid not in before_children and _alive(p)]
        # the forkserver and resource tracker outlive pools by design: one per interpreter, started once
        children = [p for p in children if not any(k in " ".join(_cmdline(p)) for k in ("forkserver", "resource_tracker"))]
        if not threads and not children:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"leaked threads {[t.name for t in threads]} / processes {[_cmdline(p) for p in children]}")
        time.sleep(0.05)


def _alive(process) -> bool:
    import psutil

    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _cmdline(process) -> list[str]:
    import psutil

    try:
        return process.cmdline()
    except psutil.Error:
        return []
