"""Output folders: single distinct names inside W, never a run, remembered so that none is ever taken for a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from local_runner import cli
from local_runner.generator import generate
from local_runner.outputs import MEMORY

from conftest import tree_digest


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    return generate(out, 12, 4, seed=2, progress=False).run_dir


@pytest.fixture
def root(tmp_path: Path, generated: Path) -> Path:
    shutil.copytree(generated, tmp_path / "W" / "run-A")
    return tmp_path / "W"


def _once(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "1", *extra])


@pytest.mark.parametrize("extra", [
    ["--unique-dir", "archive"],
    ["--archive-dir", ".dedup"],
    ["--unique-dir", "Archive", "--archive-dir", "archive"],  # one folder on Windows
    ["--unique-dir", "../outside"],
    ["--unique-dir", "{tmp}/elsewhere"],
    ["--archive-dir", "a/b"],
    ["--records-dir", ".."],
    ["--unique-dir", ""],
    ["--unique-dir", "run-A"],  # an existing run
])
def test_output_folders_must_be_distinct_single_names_and_not_a_run(root: Path, extra: list[str], capsys) -> None:
    before = tree_digest(root, skip=())
    assert _once(root, *[e.replace("{tmp}", str(root.parent)) for e in extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("InputError: ")
    after = tree_digest(root, skip=())
    log_file = after.pop(".dedup/logs/local_runner.log", None)  # the error is logged (issue 16), nothing else
    assert after == before and sorted(p.name for p in root.iterdir()) in (["run-A"], [".dedup", "run-A"])
    assert log_file is not None and "InputError: " in (root / ".dedup/logs/local_runner.log").read_text()
    assert not (root.parent / "outside").exists() and not (root.parent / "elsewhere").exists()


def test_a_changed_configuration_is_refused_until_confirmed_and_old_outputs_never_become_runs(
        root: Path, generated: Path, capsys) -> None:
    assert _once(root) == 0
    moved = tree_digest(root / "unique")
    assert moved and tree_digest(root / "run-A") == {}
    capsys.readouterr()
    assert _once(root, "--unique-dir", "to-agent") == 2
    err = capsys.readouterr().err
    assert "--confirm-new-folders" in err and len(err.strip().splitlines()) == 1
    assert not (root / "to-agent").exists()

    shutil.copytree(generated, root / "run-B")
    assert _once(root, "--unique-dir", "to-agent", "--confirm-new-folders") == 0
    assert tree_digest(root / "unique") == moved  # the old unique/ was not taken for a run called "unique"
    assert sorted(p.name for p in (root / "to-agent").iterdir()) == ["run-B"]
    memory = json.loads((root / ".dedup" / MEMORY).read_text())
    assert memory["unique"] == "to-agent" and memory["retired"] == ["unique"]
    assert _once(root) == 0  # no names given: the remembered ones
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert {line["run"]: line["status"] for line in lines} == {"run-A": "processed", "run-B": "processed"}


def test_status_after_a_pass_with_other_names_lists_only_runs(root: Path, capsys) -> None:
    names = ["--unique-dir", "to-agent", "--archive-dir", "dups", "--records-dir", "_records"]
    assert _once(root, *names) == 0
    assert {p.name for p in root.iterdir()} == {"run-A", "to-agent", "dups", "_records"}
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    lines = json.loads(capsys.readouterr().out)
    assert [(line["run"], line["status"]) for line in lines] == [("run-A", "processed")]
    assert cli.main(["status", str(root), "--unique-dir", "unique"]) == 2  # not what W uses
    assert "--confirm-new-folders" in capsys.readouterr().err
