"""status, restore and demo, on real drop zones."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from local_runner import cli
from local_runner.commands import restore
from local_runner.generator import generate
from local_runner.journal import Journal
from local_runner.layout import Layout
from local_runner.records import RunRecords

from conftest import Killed, kill_mover_at_step, tree_digest


@pytest.fixture
def processed(tmp_path: Path) -> Path:
    root = tmp_path / "W"
    generate(tmp_path / "gen", 40, 16, seed=5, progress=False)
    shutil.copytree(tmp_path / "gen" / "run-0001", root / "run-0001")
    assert cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress"]) == 0
    return root


def test_status_lists_processed_pending_and_failed(processed: Path, capsys) -> None:
    (processed / "run-0002").mkdir()
    (processed / "run-0002" / "new.png").write_bytes(b"being written")
    records = RunRecords(Layout(processed).records("run-0003"))
    (processed / "run-0003").mkdir()
    (processed / "run-0003" / "x.png").write_bytes(b"x")
    from local_runner.processing import RunProcessor
    from dedup_engine import DedupParams

    RunProcessor(Layout(processed), DedupParams(), task=lambda *a: None).fail("run-0003", RuntimeError("disk gone"))
    assert cli.main(["status", str(processed), "--json"]) == 0
    lines = {line["run"]: line for line in json.loads(capsys.readouterr().out)}
    assert lines["run-0001"]["status"] == "processed" and lines["run-0001"]["total"] == 40
    assert lines["run-0001"]["duplicate"] + lines["run-0001"]["unique"] == 40
    assert lines["run-0002"]["status"] == "pending" and lines["run-0002"]["files_waiting"] == 1
    assert lines["run-0003"]["status"] == "failed" and "disk gone" in lines["run-0003"]["detail"]
    assert records.read_state().status == "failed"
    assert cli.main(["status", str(processed)]) == 0
    out = capsys.readouterr().out
    assert "run-0001  processed" in out and "3 runs: 1 processed, 1 pending, 1 failed" in out
    assert cli.main(["status", str(processed / "missing")]) == 2


def test_restore_brings_archived_files_back_byte_for_byte(processed: Path, capsys) -> None:
    layout = Layout(processed)
    result = RunRecords(layout.records("run-0001")).read_result()
    archived = [o for o in result.files if o.status == "duplicate"]
    assert len(archived) >= 10
    before = tree_digest(processed)
    one = archived[0].path
    assert cli.main(["restore", str(processed), "run-0001", one]) == 0
    assert tree_digest(processed)[f"run-0001/{one}"] == archived[0].sha256
    assert not (processed / archived[0].destination).exists()
    assert cli.main(["restore", str(processed), "run-0001"]) == 0
    after = tree_digest(processed)
    assert Counter(after.values()) == Counter(before.values())  # nothing lost, nothing copied twice
    assert not any(p.startswith("archive/") for p in after)
    for outcome in archived:
        assert after[f"run-0001/{outcome.path}"] == outcome.sha256
    capsys.readouterr()
    assert cli.main(["restore", str(processed), "run-0001"]) == 0  # twice: harmless
    assert f"0 restored, {len(archived)} already restored" in capsys.readouterr().out
    assert tree_digest(processed) == after
    state = RunRecords(layout.records("run-0001")).read_state()
    assert len(state.restored) == len(archived)
    restored_result = RunRecords(layout.records("run-0001")).read_result()
    restored_ones = [o for o in restored_result.files if o.status == "restored"]
    assert len(restored_ones) == len(archived) == restored_result.counts.restored
    assert all(o.destination == f"run-0001/{o.path}" for o in restored_ones) and restored_result.counts.duplicate == 0
    assert cli.main([str(processed), "--once", "--settle-seconds", "0", "--no-progress"]) == 0
    assert tree_digest(processed) == after  # restored files are not archived again
    assert len(Journal(layout.records("run-0001") / "journal.jsonl").state().done) == 40 + len(archived)


def test_restore_refuses_unknown_runs_and_paths(processed: Path, capsys) -> None:
    assert cli.main(["restore", str(processed), "run-9999"]) == 2
    assert "no records" in capsys.readouterr().err
    assert cli.main(["restore", str(processed), "run-0001", "no-such.png"]) == 1
    assert "not in run run-0001: no-such.png" in capsys.readouterr().err


def test_restore_after_a_crash_finishes_through_the_journal(processed: Path, monkeypatch) -> None:
    layout = Layout(processed)
    before = tree_digest(processed)
    kill_mover_at_step(monkeypatch, 5)
    with pytest.raises(Killed):
        restore(layout, "run-0001")
    monkeypatch.undo()
    assert Counter(tree_digest(processed).values()) == Counter(before.values())
    report = restore(layout, "run-0001")
    after = tree_digest(processed)
    assert Counter(after.values()) == Counter(before.values()) and not any(p.startswith("archive/") for p in after)
    result = RunRecords(layout.records("run-0001")).read_result()
    assert all(after[o.destination] == o.sha256 for o in result.files)
    assert report.failed == []


def test_demo_runs_the_whole_drop_zone(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", "--dir", str(tmp_path / "demo"), "--total-images", "30", "--similar-images", "10"]) == 0
    out = capsys.readouterr().out
    assert "files: 30" in out and "0 distinct images wrongly archived" in out
    unique = len(list((tmp_path / "demo" / "unique" / "run-0001").iterdir()))
    assert f"({unique} unique images + result.json)" in out
    assert cli.main(["demo", "--dir", str(tmp_path / "demo")]) == 2  # not an empty folder


def test_generator_cli_writes_a_run_and_its_truth(tmp_path: Path) -> None:
    from local_runner.generator import main

    assert main([str(tmp_path), "--total-images", "20", "--similar-images", "8", "--seed", "4", "--size", "64x48",
                 "--format", "png"]) == 0
    truth = json.loads((tmp_path / "run-0001.truth.json").read_text())
    files = sorted((tmp_path / "run-0001").iterdir())
    assert len(files) == 20 and set(truth["files"]) == {f.name for f in files}
    roles = Counter(entry["role"] for entry in truth["files"].values())
    assert roles == {"original": 12, "duplicate": 8}
    from PIL import Image

    with Image.open(files[0]) as image:
        assert image.size in ((64, 48), (61, 46)) or image.size[0] <= 64
    again = tmp_path / "again"
    assert main([str(again), "--total-images", "20", "--similar-images", "8", "--seed", "4", "--size", "64x48",
                 "--format", "png"]) == 0
    assert tree_digest(again / "run-0001") == tree_digest(tmp_path / "run-0001")  # a seed gives the same run
    assert main([str(tmp_path), "--total-images", "5", "--similar-images", "5"]) == 2
    assert main([str(tmp_path), "--total-images", "20", "--similar-images", "8"]) == 2  # run exists already


def test_status_separates_failed_from_interrupted(processed: Path, capsys) -> None:
    from dedup_engine import DedupParams
    from local_runner.processing import RunProcessor
    from local_runner.records import RunState
    import datetime as dt

    layout = Layout(processed)
    now = dt.datetime.now(dt.timezone.utc)
    for run in ("run-killed", "run-broken"):
        (processed / run).mkdir()
        (processed / run / "a.png").write_bytes(b"x")
        RunRecords(layout.records(run)).write_state(RunState(run=run, status="moving", updated_at=now, passes=1,
                                                             journal_from=0))
    RunProcessor(layout, DedupParams(), task=lambda *a: None).fail(
        "run-broken", NotADirectoryError(20, "Not a directory", str(processed / "unique")))
    assert cli.main(["status", str(processed), "--json"]) == 0
    lines = {line["run"]: line for line in json.loads(capsys.readouterr().out)}
    assert lines["run-killed"]["status"] == "interrupted" and "finishes them" in lines["run-killed"]["detail"]
    broken = lines["run-broken"]
    assert broken["status"] == "failed" and "Not a directory" in broken["detail"] and "retries" in broken["detail"]
    assert cli.main(["status", str(processed)]) == 0
    assert "3 runs: 1 processed, 0 pending, 1 failed, 1 interrupted, 0 dry-run" in capsys.readouterr().out
