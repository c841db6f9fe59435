"""bench/evaluate_realdup.py runs from a clone: the labelled set ships in bench/data/realdup-dev."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "evaluate_realdup.py"


def _script():  # type: ignore[no-untyped-def]
    return load_script(SCRIPT, "evaluate_realdup")


def test_the_default_set_ships_complete_with_its_sources() -> None:
    default = _script().DEFAULT_SET
    assert default.is_relative_to(SCRIPT.parent)  # inside the repository, not a sibling folder
    truth = json.loads((default / "truth.json").read_text())
    on_disk = {p.relative_to(default).as_posix() for p in (default / "images").rglob("*") if p.is_file()}
    assert on_disk == set(truth["files"]) and len(on_disk) == 1010
    sources = (default / "SOURCES.md").read_text()
    assert "Licence" in sources and "CC-BY 4.0" in sources


def test_the_evaluation_runs_on_a_subset_of_the_shipped_set(tmp_path: Path, capsys) -> None:
    module = _script()
    truth = json.loads((module.DEFAULT_SET / "truth.json").read_text())
    groups: dict[str, list[str]] = {}
    for path, info in truth["files"].items():
        groups.setdefault(info["group"], []).append(path)
    chosen = [g for g in groups.values() if len(g) > 1][:6]
    files = {p: truth["files"][p] for g in chosen for p in g}
    for path in files:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes((module.DEFAULT_SET / path).read_bytes())
    (tmp_path / "truth.json").write_text(json.dumps({**truth, "files": files}))
    assert module.main([str(tmp_path), "--json", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == len(files) and report["false_merges"] == 0
    assert report["duplicates_total"] == sum(1 for f in files.values() if f["role"] == "duplicate")
