"""The workers' start-up: the forkserver can be started before the engine is imported, and its workers decide as
the engine's own would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, check=True)
    return done.stdout.strip()


def test_the_processes_module_imports_nothing_heavy() -> None:
    loaded = json.loads(_python("import json, sys; import dedup_engine.processes; "
                                "print(json.dumps(sorted(m for m in ('cv2', 'numpy', 'pydantic', 'scipy') "
                                "if m in sys.modules)))"))
    assert loaded == []


def test_a_forkserver_started_early_serves_the_engines_pool(engine_data: Path) -> None:
    """start_early() first, then a pooled run: the pool uses that forkserver (no second one) and decides exactly
    as a run fingerprinted in one process."""
    code = f"""
import json, sys
from dedup_engine.processes import start_early
start_early()
from multiprocessing import forkserver
first = forkserver._forkserver._forkserver_pid
from pathlib import Path
from dedup_engine import DedupParams, dedup
files = sorted(p for p in Path({str(engine_data)!r}).iterdir() if p.suffix in ('.png', '.bmp'))[:40]
sources = [(p.name, p.read_bytes()) for p in files]
pooled = dedup('r', sources, DedupParams(), workers=2)
inline = dedup('r', sources, DedupParams(), workers=1)
same = [(o.path, o.status, o.duplicate_of) for o in pooled.files] == [(o.path, o.status, o.duplicate_of) for o in inline.files]
print(json.dumps({{'same_server': first == forkserver._forkserver._forkserver_pid and first is not None,
                  'same_decisions': same, 'files': len(pooled.files),
                  'duplicates': pooled.counts.duplicate}}))
"""
    outcome = json.loads(_python(code).splitlines()[-1])
    assert outcome["same_server"] and outcome["same_decisions"]
    assert outcome["files"] == 40 and outcome["duplicates"] > 0


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2: --cpus 2
    ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up
    ({"cpu.max": "max 100000\n"}, None),  # no quota
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),  # cgroup v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),  # v1 without a quota
    ({}, None),  # no cgroup files (Windows, macOS)
])
def test_a_containers_cpu_quota_bounds_the_default_process_count(tmp_path: Path, files: dict[str, str],
                                                                  expected: int | None) -> None:
    from dedup_engine import processes

    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content)
    assert processes.cgroup_cpus(str(tmp_path)) == expected


def test_the_default_process_count_is_at_most_the_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    from dedup_engine import processes

    monkeypatch.setattr(processes, "cgroup_cpus", lambda root=processes.CGROUP: 1)
    assert processes.default_workers() == 1
    monkeypatch.setattr(processes, "cgroup_cpus", lambda root=processes.CGROUP: None)
    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert processes.default_workers() == allowed


def _big_result(size: int) -> bytes:
    return bytes(size)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pipe sizes are set on Linux only")
def test_a_pools_result_pipe_is_widened_and_large_results_still_arrive() -> None:
    """A worker's chunk of fingerprints (350-460 KB) fits in the widened pipe at once, instead of being handed over
    64 KiB at a time; results several times the pipe's size still arrive whole."""
    import fcntl
    from concurrent.futures import ProcessPoolExecutor

    from dedup_engine import processes

    with open("/proc/sys/fs/pipe-max-size") as handle:
        allowed = min(processes.RESULT_PIPE_BYTES, int(handle.read()))
    with ProcessPoolExecutor(1, mp_context=processes.context()) as pool:
        reader = pool._result_queue._reader  # type: ignore[attr-defined]
        before = fcntl.fcntl(reader.fileno(), getattr(fcntl, "F_GETPIPE_SZ", 1032))
        assert processes.widen_result_pipe(pool) == allowed > before
        assert [len(r) for r in pool.map(_big_result, [3 << 20, 10, 600_000])] == [3 << 20, 10, 600_000]


def test_the_engines_own_pool_gets_the_wide_pipe(engine_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dedup_engine import DedupParams, dedup, engine, processes

    widened: list[int | None] = []
    monkeypatch.setattr(engine, "widen_result_pipe", lambda pool: widened.append(processes.widen_result_pipe(pool)))
    files = sorted(p for p in engine_data.iterdir() if p.suffix in (".png", ".bmp"))[:30]
    dedup("r", [(p.name, p.read_bytes()) for p in files], DedupParams(), workers=2)
    assert len(widened) == 1
    if sys.platform.startswith("linux"):
        assert widened[0] is not None and widened[0] >= 1 << 16
    else:
        assert widened[0] is None


def test_widening_is_skipped_for_a_pool_without_a_pipe() -> None:
    from dedup_engine import processes

    assert processes.widen_result_pipe(object()) is None
