"""Every file of a run folder has one outcome, and the records (result, report, log, status) say what happened:
skipped entries, dry runs in the conditional, restores in the counts, timings whose parts add up."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from local_runner import cli
from local_runner.generator import generate
from local_runner.layout import Layout
from local_runner.records import RunRecords

RUN = "run-0001"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 16, 6, seed=9, progress=False).run_dir


@pytest.fixture
def root(tmp_path: Path, generated: Path) -> Path:
    shutil.copytree(generated, tmp_path / "W" / RUN)
    return tmp_path / "W"


def _run(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "1", *extra])


def _records(root: Path) -> RunRecords:
    return RunRecords(Layout(root).records(RUN))


def _log(root: Path) -> str:
    return (root / ".dedup" / "logs" / "local_runner.log").read_text()


def _status(root: Path, capsys) -> dict:  # type: ignore[no-untyped-def]
    capsys.readouterr()
    assert cli.main(["status", str(root), "--json"]) == 0
    return {line["run"]: line for line in json.loads(capsys.readouterr().out)}


def test_files_not_taken_as_input_are_skipped_with_a_reason_everywhere(root: Path, generated: Path, capsys) -> None:
    run = root / RUN
    image = next(generated.iterdir()).read_bytes()
    extras = {"Thumbs.db": b"thumbs", "x.part": image, "~$scan.png": image, ".hidden.png": image}
    for name, data in extras.items():
        (run / name).write_bytes(data)
    assert _run(root) == 0
    result = _records(root).read_result()
    outcomes = {o.path: o for o in result.files}
    assert {name: outcomes[name].status for name in extras} == dict.fromkeys(extras, "skipped")
    assert all(outcomes[name].reason and outcomes[name].destination is None for name in extras)
    assert "hidden" in outcomes[".hidden.png"].reason and "temporary" in outcomes["x.part"].reason
    assert result.counts.skipped == 4 and result.counts.total == 16 + 4 == len(result.files)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == extras  # left in place, untouched
    assert "4 skipped" in _log(root)
    report = _records(root).report_path.read_text()
    assert "Skipped files (4)" in report and "~$scan.png" in report
    line = _status(root, capsys)[RUN]
    assert line["skipped"] == 4 and line["files_waiting"] == 0 and line["status"] == "processed"
    assert _run(root) == 0
    assert _records(root).read_state().passes == 1  # skipped entries are not decided again
    (run / "desktop.ini").write_bytes(b"[x]")  # a new one is noticed, and recorded
    assert _status(root, capsys)[RUN]["files_waiting"] == 1
    assert _run(root) == 0
    assert _records(root).read_result().counts.skipped == 5


def test_a_dry_run_says_would_in_the_report_the_log_and_status(root: Path, capsys) -> None:
    assert _run(root, "--dry-run") == 0
    result = _records(root).read_result()
    assert result.counts.duplicate > 0 and len(list((root / RUN).iterdir())) == 16
    report = _records(root).report_path.read_text()
    assert "Dry run: nothing was moved" in report and "would be archived" in report
    assert "Unique images are in" not in report and "archived: " not in report.replace("would be archived: ", "")
    assert "duplicates archived" not in _log(root) and "duplicates would be archived" in _log(root)
    line = _status(root, capsys)[RUN]
    assert line["status"] == "dry-run" and "nothing was moved" in line["detail"]
    capsys.readouterr()
    assert cli.main(["status", str(root)]) == 0
    assert "1 dry-run" in capsys.readouterr().out


def test_restore_updates_the_counts_the_report_and_status(root: Path, capsys) -> None:
    assert _run(root) == 0
    archived = [o for o in _records(root).read_result().files if o.status == "duplicate"]
    assert len(archived) >= 2
    assert cli.main(["restore", str(root), RUN, archived[0].path]) == 0
    result = _records(root).read_result()
    outcome = result.by_path()[archived[0].path]
    assert outcome.status == "restored" and outcome.destination == f"{RUN}/{archived[0].path}"
    assert outcome.duplicate_of == archived[0].duplicate_of  # the decision is kept with the outcome
    assert result.counts.duplicate == len(archived) - 1 and result.counts.restored == 1
    assert _records(root).read_state().counts == result.counts
    report = _records(root).report_path.read_text()
    assert "Restored files (1)" in report
    assert f'<div>{archived[0].path}</div><div>archived' not in report  # no longer shown as archived
    line = _status(root, capsys)[RUN]
    assert line["restored"] == 1 and line["duplicate"] == len(archived) - 1


def test_timings_add_up_and_a_late_pass_shows_its_own_beside_the_sums(root: Path, generated: Path,
                                                                      tmp_path: Path) -> None:
    assert _run(root) == 0
    first = _records(root).read_result().timings
    for timings in (first,):
        assert timings["decide_s"] == pytest.approx(timings["candidate_search_s"] + timings["proof_s"], abs=1e-9)
        assert timings["total_s"] == pytest.approx(timings["decide_s"] + timings["other_s"], abs=1e-9)
        assert timings["other_s"] >= 0
    late = generate(tmp_path / "late", 3, 0, seed=123, progress=False).run_dir
    for path in late.iterdir():
        shutil.copy(path, root / RUN / f"late-{path.name}")
    assert _run(root) == 0
    records = _records(root)
    second = records.read_pass(2).timings
    assert second["total_s"] == pytest.approx(second["decide_s"] + second["other_s"], abs=1e-9)
    summed = records.read_result().timings
    assert summed == {k: pytest.approx(first[k] + second[k], abs=1e-9) for k in first}
    report = records.report_path.read_text()
    assert "Timings of all 2 passes (summed)" in report and "Timings of pass 2 alone" in report


def test_a_dry_run_leaves_a_processed_runs_records_alone(root: Path) -> None:
    """A dry run over a run that was processed plans the new files in dry-run.json and touches nothing else: the
    next real pass still decides them against the run's kept images and keeps the whole record."""
    assert _run(root) == 0
    records = _records(root)
    before = {name: (records.folder / name).read_bytes() for name in ("result.json", "state.json")}
    kept = next(o for o in records.read_result().files if o.status == "unique")
    copy = root / RUN / "late-copy.png"
    shutil.copy2(root / kept.destination, copy)  # an exact copy of a kept image, arriving late
    assert _run(root, "--dry-run") == 0
    assert {name: (records.folder / name).read_bytes() for name in before} == before
    plan = json.loads((records.folder / "dry-run.json").read_text())
    planned = {o["path"]: o for o in plan["files"]}
    assert planned["late-copy.png"]["duplicate_of"] == kept.path and len(planned) == len(records.read_result().files) + 1
    assert copy.exists()  # nothing moved
    assert _run(root) == 0
    result = records.read_result()
    late = result.by_path()["late-copy.png"]
    assert late.status == "duplicate" and late.duplicate_of == kept.path
    assert result.counts.total == len(planned)  # the earlier files' outcomes are still in the record
