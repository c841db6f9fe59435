"""The label-only mode: the manifest it writes, what it leaves alone, and the run from the drop zone to labels."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from ts_sdk.testing.models import LocalFile, Task, TaskScript, Workflow
from ts_sdk.testing.result import Ok

from dedup_engine.models import FolderManifest
from local_runner import cli, commands
from local_runner.generator import generate
from local_runner.label_mode import RunChangedError, file_entry
from local_runner.layout import Layout
from local_runner.records import RunRecords

from conftest import tree_digest
from task_script_fixtures import TASK_DIR

MANIFEST = "dedup-manifest.json"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 40, 16, seed=5, progress=False).run_dir


def _drop_zone(tmp_path: Path, generated: Path, name: str = "run-0001") -> Path:
    root = tmp_path / "W"
    shutil.copytree(generated, root / name)
    return root


def _run(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2", *extra])


def _manifest(root: Path, run: str = "run-0001") -> FolderManifest:
    return FolderManifest.model_validate_json((root / run / MANIFEST).read_bytes())


def test_the_manifest_lists_every_input_file_with_size_and_sha256_and_nothing_moves(tmp_path: Path,
                                                                                   generated: Path) -> None:
    root = _drop_zone(tmp_path, generated)
    run_dir = root / "run-0001"
    (run_dir / "Thumbs.db").write_bytes(b"system")
    shutil.copy(next(generated.glob("*.png")), run_dir / ".hidden.png")
    (run_dir / "scan.part").write_bytes(b"half")
    os.symlink(next(generated.glob("*.png")), run_dir / "link.png")
    (run_dir / "plate A").mkdir()
    shutil.copy(next(generated.glob("*.bmp")), run_dir / "plate A" / "inner.bmp")
    before = tree_digest(root)
    assert _run(root, "--mode", "label") == 0
    after = tree_digest(root)
    assert after.pop(f"run-0001/{MANIFEST}") and after == before  # nothing moved, nothing changed
    assert not (root / "unique").exists() and not (root / "archive").exists()
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]  # written under a temporary name, renamed
    manifest = _manifest(root)
    inputs = sorted(p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file()) + \
        ["plate A/inner.bmp"]
    assert sorted(e.path for e in manifest.files) == sorted(inputs)  # skipped entries are not listed
    for entry in manifest.files:
        data = (run_dir / entry.path).read_bytes()
        assert (entry.size_bytes, entry.sha256) == (len(data), hashlib.sha256(data).hexdigest())
        assert entry.file is None  # the task finds it beside the manifest
    assert manifest.run == "run-0001" and manifest.kept == []
    assert RunRecords(Layout(root).records("run-0001")).manifest_path.read_bytes() == (run_dir / MANIFEST).read_bytes()


def test_status_shows_the_run_done_and_late_files_give_a_new_version(tmp_path: Path, generated: Path,
                                                                    capsys) -> None:
    root = _drop_zone(tmp_path, generated)
    assert _run(root, "--mode", "label") == 0
    first = (root / "run-0001" / MANIFEST).read_bytes()
    assert _run(root, "--mode", "label") == 0
    assert (root / "run-0001" / MANIFEST).read_bytes() == first  # nothing new: the same version stays
    (line,) = commands.collect_status(Layout(root), settle_seconds=0)
    assert (line.status, line.files_waiting) == ("label-only", 0) and "version 1" in line.detail
    late = root / "run-0001" / "zz-late.png"
    shutil.copy(next(generated.glob("*.png")), late)
    (line,) = commands.collect_status(Layout(root), settle_seconds=0)
    assert (line.status, line.files_waiting) == ("pending", 1)
    assert _run(root, "--mode", "label") == 0
    second = _manifest(root)
    assert [e.path for e in second.files][-1] == "zz-late.png" and len(second.files) == len(_ids(first)) + 1
    (line,) = commands.collect_status(Layout(root), settle_seconds=0)
    assert (line.status, line.files_waiting) == ("label-only", 0) and "version 2" in line.detail
    assert commands.run("status", [str(root)]) == 0
    assert "1 label-only" in capsys.readouterr().out


def _ids(manifest: bytes) -> list[str]:
    return [e["path"] for e in json.loads(manifest)["files"]]


def test_a_file_that_changes_while_it_is_hashed_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"12345")
    info = (tmp_path / "a.png").stat()
    assert file_entry(tmp_path, "a.png", 5, info.st_mtime_ns).sha256 == hashlib.sha256(b"12345").hexdigest()
    with pytest.raises(RunChangedError, match="changed while"):
        file_entry(tmp_path, "a.png", 4, info.st_mtime_ns)  # listed at another size: written meanwhile


@pytest.mark.parametrize("option", [["--dry-run"], ["--result-to-agent"], ["--upload-to", "s3://b/p"]])
def test_move_mode_options_are_a_usage_error_in_label_mode(tmp_path: Path, option: list[str], capsys) -> None:
    assert _run(tmp_path, "--mode", "label", *option) == 2
    assert f"{option[0]}: only for move mode" in capsys.readouterr().err


# --- from the drop zone to labels: the runner, the agent's upload, the pipeline's task -------------------------


def test_label_mode_from_the_drop_zone_to_labels_decides_as_move_mode(tmp_path: Path, generated: Path) -> None:
    root = _drop_zone(tmp_path / "label", generated)
    run_dir = root / "run-0001"
    (run_dir / "Thumbs.db").write_bytes(b"system")  # the agent uploads it too; the task neither reads nor labels it
    assert _run(root, "--mode", "label") == 0
    # the File Log Agent on W, glob **/* without .dedup/**: keys <org>/<source>/RAW/Imaging/<run>/<path>
    uploaded = sorted(p for p in run_dir.rglob("*") if p.is_file())
    script = TaskScript.from_manifest(str(TASK_DIR / "manifest.json"))
    with Workflow(org_slug="imaging-lab") as workflow:
        bucket = f"lake-{uuid.uuid4().hex}"
        files = {p.relative_to(run_dir).as_posix(): LocalFile(
            path=str(p), org_slug="imaging-lab", source_id="agent-1", labels=[], bucket=bucket,
            name=f"Imaging/run-0001/{p.relative_to(run_dir).as_posix()}") for p in uploaded}
        trigger = files.pop(MANIFEST)
        outcome = Task(function=script.function("dedup"), workflow=workflow).run({"manifest": trigger.to_file_pointer()})
        labels = {path: {label.name: label.value for label in f.labels} for path, f in files.items()}
    assert isinstance(outcome, Ok), outcome
    assert labels.pop("Thumbs.db") == {}
    images = {p.relative_to(generated).as_posix() for p in generated.rglob("*") if p.is_file()}
    assert set(labels) == images and all(these["dedup-status"] in ("unique", "duplicate") for these in labels.values())
    duplicates = {path: these["dedup-duplicate-of"] for path, these in labels.items()
                  if these["dedup-status"] == "duplicate"}
    assert duplicates and all(labels[kept]["dedup-status"] == "unique" for kept in duplicates.values())
    assert outcome.value["labelled"] == len(images) and outcome.value["label_failures"] == {}
    # the same run in move mode, decided at the edge: the same decisions
    moved = _drop_zone(tmp_path / "move", generated)
    assert _run(moved) == 0
    result = RunRecords(Layout(moved).records("run-0001")).read_result()
    assert {o.path: (o.status, o.duplicate_of) for o in result.files} == \
        {path: (these["dedup-status"], these.get("dedup-duplicate-of")) for path, these in labels.items()}
