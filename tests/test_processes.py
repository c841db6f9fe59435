"""The workers' start-up: the forkserver can be started before the engine is imported, and its workers decide as
the engine's own would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
