"""End to end: generator -> runner (the real CLI, in process) -> a real moto server over HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from local_runner import cli
from local_runner.generator import generate
from local_runner.records import RunRecords
from local_runner.layout import Layout

from conftest import Killed, kill_mover_at_step, tree_digest
from fault_proxy import FaultProxy


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("generated")
    made = generate(out, 60, 24, seed=3, progress=False)
    return made.run_dir, json.loads(made.truth_path.read_text())["files"]


def _drop_zone(tmp_path: Path, generated, name: str = "run-0001") -> Path:
    root = tmp_path / "W"
    shutil.copytree(generated[0], root / name)
    return root


def _run(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2", *extra])


def _bytes(digests: dict[str, str]) -> Counter:
    return Counter(digests.values())


def test_generator_to_runner_to_s3(tmp_path: Path, generated, moto_server, bucket: str) -> None:
    root = _drop_zone(tmp_path, generated)
    before = tree_digest(root)
    upload = ["--upload-to", f"s3://{bucket}/lab", "--s3-endpoint-url", moto_server.endpoint_url]
    assert _run(root, *upload) == 0
    after = tree_digest(root)
    assert _bytes(after) == _bytes(before)  # every file exactly once, identical bytes
    assert not any(p.startswith("run-0001/") for p in after)  # all moved out of the run folder
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    assert result is not None and result.counts.total == 60
    truth = generated[1]
    for outcome in result.files:
        assert after[outcome.destination] == outcome.sha256 == before[f"run-0001/{outcome.path}"]
        if outcome.status == "duplicate":
            assert outcome.destination.startswith("archive/run-0001/")
            assert truth[outcome.path]["group"] == truth[outcome.duplicate_of]["group"]  # no false merge
        else:
            assert outcome.status == "unique" and outcome.destination.startswith("unique/run-0001/")
    assert result.counts.duplicate >= 20  # of 24 generated near-duplicates
    stored = moto_server.objects("lab/")
    uniques = {f"lab/run-0001/{o.path}": o.sha256 for o in result.files if o.status == "unique"}
    assert {k: v["sha256"] for k, v in stored.items() if "/.dedup/" not in k} == uniques  # only unique images
    assert "lab/run-0001/.dedup/result.json" in stored
    state_before = (root / ".dedup/runs/run-0001/state.json").read_bytes()
    assert _run(root, *upload) == 0  # a rerun is a no-op
    assert tree_digest(root) == after
    assert (root / ".dedup/runs/run-0001/state.json").read_bytes() == state_before
    assert {k: v["sha256"] for k, v in moto_server.objects("lab/").items()} == {k: v["sha256"] for k, v in stored.items()}


def test_dry_run_moves_nothing_and_plans_everything(tmp_path: Path, generated) -> None:
    root = _drop_zone(tmp_path, generated)
    before = tree_digest(root)
    assert _run(root, "--dry-run") == 0
    assert tree_digest(root) == before
    result = json.loads((root / ".dedup/runs/run-0001/result.json").read_text())
    assert all(f["destination"].startswith(("unique/run-0001/", "archive/run-0001/")) for f in result["files"])
    assert _run(root) == 0  # the real pass after a dry run
    assert not any(p.startswith("run-0001/") for p in tree_digest(root))


def test_late_files_are_decided_against_the_kept_images(tmp_path: Path, generated) -> None:
    root = _drop_zone(tmp_path, generated)
    assert _run(root) == 0
    first = RunRecords(Layout(root).records("run-0001")).read_result()
    kept = next(o for o in first.files if o.status == "unique")
    late_copy = root / "run-0001" / "late-copy.bin"
    late_copy.write_bytes((root / kept.destination).read_bytes())
    distinct = generate(tmp_path / "other", 1, 0, seed=99, progress=False).run_dir
    late_new = root / "run-0001" / "late-new.png"
    shutil.copy(next(distinct.iterdir()), late_new)
    assert _run(root) == 0
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    by_path = {o.path: o for o in result.files}
    assert by_path["late-copy.bin"].status == "duplicate" and by_path["late-copy.bin"].duplicate_of == kept.path
    assert by_path["late-new.png"].status == "unique"
    assert result.counts.total == 62 and (root / "archive/run-0001/late-copy.bin").is_file()
    assert len(list((root / ".dedup/runs/run-0001/passes").iterdir())) == 2


def test_a_failed_upload_is_retried_on_the_next_pass(tmp_path: Path, generated, moto_server, bucket: str) -> None:
    root = _drop_zone(tmp_path, generated)

    def plan(number: int, method: str, path: str) -> str:
        return "503" if method == "PUT" and path.endswith(".png") else "pass"

    with FaultProxy(moto_server.endpoint_url, plan) as proxy:
        code = _run(root, "--upload-to", f"s3://{bucket}/lab", "--s3-endpoint-url", proxy.url, "--s3-max-attempts", "2")
    assert code == 3  # the files are safe in unique/; the upload is left to do, and a scheduler can tell
    state = RunRecords(Layout(root).records("run-0001")).read_state()
    assert state.upload is not None and state.upload.failed > 0 and proxy.actions["503"] > 0
    partial = moto_server.objects("lab/")
    assert not any(k.endswith(".png") for k in partial)  # never recorded nor stored half-done
    assert _run(root, "--upload-to", f"s3://{bucket}/lab", "--s3-endpoint-url", moto_server.endpoint_url) == 0
    state = RunRecords(Layout(root).records("run-0001")).read_state()
    assert state.upload.failed == 0 and state.upload.uploaded == sum(k.endswith(".png") for k in moto_server.objects("lab/"))
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    assert len([k for k in moto_server.objects("lab/") if "/.dedup/" not in k]) == result.counts.unique


def test_a_crash_during_the_moves_is_finished_by_the_next_start(tmp_path: Path, generated, monkeypatch) -> None:
    root = _drop_zone(tmp_path, generated)
    before = tree_digest(root)
    kill_mover_at_step(monkeypatch, 25)
    with pytest.raises(Killed):
        _run(root)
    monkeypatch.undo()
    state = RunRecords(Layout(root).records("run-0001")).read_state()
    assert state.status == "moving"
    assert _bytes(tree_digest(root)) == _bytes(before)  # nothing lost even mid-way
    assert _run(root) == 0
    after = tree_digest(root)
    assert _bytes(after) == _bytes(before)
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    assert all(after[o.destination] == o.sha256 for o in result.files)
    assert RunRecords(Layout(root).records("run-0001")).read_state().status == "processed"


def test_hostile_entries_are_left_in_place_with_a_reason(tmp_path: Path, generated, bad_inputs: Path) -> None:
    import os

    root = _drop_zone(tmp_path, generated)
    run = root / "run-0001"
    for bad in sorted(bad_inputs.iterdir()):
        if bad.is_file() and bad.suffix.lower() != ".md":
            shutil.copy(bad, run / bad.name)
    secret = tmp_path / "outside.png"
    shutil.copy(next(generated[0].iterdir()), secret)
    os.symlink(secret, run / "link to outside.png")
    long_name = "é " * 60 + ".png"
    shutil.copy(next(generated[0].iterdir()), run / long_name)
    assert _run(root) == 0
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    by_path = {o.path: o for o in result.files}
    link = by_path["link to outside.png"]
    assert link.status == "skipped" and "symbolic link" in link.reason and (run / "link to outside.png").is_symlink()
    assert by_path[long_name].status == "duplicate"  # an exact copy, whatever its name
    from test_decoding import EXPECTED_ERRORS, PROCESSED

    for name, (kind, words) in EXPECTED_ERRORS.items():
        outcome = by_path[name]
        assert outcome.status == "error" and words in outcome.error and outcome.destination is None
        assert (run / name).read_bytes() == (bad_inputs / name).read_bytes()  # left untouched, in place
    for name in PROCESSED:
        assert by_path[name].status == "unique" and (root / "unique/run-0001" / name).is_file()
    assert secret.read_bytes() == next(generated[0].iterdir()).read_bytes()
    assert _run(root) == 0  # the errors are not decided again while they do not change
    assert RunRecords(Layout(root).records("run-0001")).read_state().passes == 1
    (run / "truncated.png").write_bytes((bad_inputs / "rgba.png").read_bytes())  # the instrument completes it
    assert _run(root) == 0
    result = RunRecords(Layout(root).records("run-0001")).read_result()
    assert {o.path: o for o in result.files}["truncated.png"].status == "duplicate"  # an exact copy of rgba.png


def test_missing_or_unreadable_watch_dir_is_one_clear_line(tmp_path: Path, capsys) -> None:
    assert cli.main([str(tmp_path / "nope"), "--once"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]
    assert cli.main([str(tmp_path), "--once", "--workers", "0"]) == 2
    assert cli.main([str(tmp_path), "--once", "--max-residual", "-1"]) == 2
    assert cli.main([str(tmp_path), "--bogus"]) == 2
    assert cli.main(["--help"]) == 0
    assert "Exit codes" in capsys.readouterr().out


def test_the_watcher_keeps_running_through_a_storage_outage(tmp_path: Path, generated, moto_server, bucket: str) -> None:
    """Watching (not --once): an S3 outage fails the first run's upload; the watcher goes on, takes the next run,
    and uploads what is left once the store is back, without a restart."""
    import threading
    import time

    from dedup_engine import DedupParams
    from local_runner.processing import RunProcessor
    from local_runner.service import Service
    from local_runner.uploader import Uploader, UploadSettings

    root = _drop_zone(tmp_path, generated)
    layout = Layout(root)
    outage = {"on": True}

    def plan(number: int, method: str, path: str) -> str:
        return "503" if outage["on"] and method == "PUT" else "pass"

    def state_of(run: str):  # type: ignore[no-untyped-def]
        return RunRecords(layout.records(run)).read_state()

    def wait_for(condition, what: str, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.1)

    with FaultProxy(moto_server.endpoint_url, plan) as proxy:
        settings = UploadSettings.from_url(f"s3://{bucket}/lab", endpoint_url=proxy.url, max_attempts=2)
        with Uploader(settings) as uploader:
            processor = RunProcessor(layout, DedupParams(), workers=2, uploader=uploader)
            service = Service(layout, processor, settle_seconds=0.3, poll_interval=0.2, retry_seconds=0.5)
            codes: list[int] = []
            thread = threading.Thread(target=lambda: codes.append(service.run_forever()), name="service")
            thread.start()
            try:
                wait_for(lambda: (s := state_of("run-0001")) is not None and s.upload is not None
                         and s.upload.failed > 0, "the first run, its upload failing")
                assert not any(k.endswith(".png") or k.endswith(".bmp") for k in moto_server.objects("lab/"))
                shutil.copytree(generated[0], root / "run-0002")  # the instrument writes on during the outage
                wait_for(lambda: (s := state_of("run-0002")) is not None and s.status == "processed",
                         "the second run, processed during the outage")
                outage["on"] = False
                wait_for(lambda: all((s := state_of(r)) is not None and s.upload is not None and s.upload.failed == 0
                                     for r in ("run-0001", "run-0002")), "both uploads, once the store is back")
                assert thread.is_alive()
            finally:
                service.stop()
                thread.join(timeout=30)
    assert codes == [0] and proxy.actions["503"] > 0
    for run in ("run-0001", "run-0002"):
        result = RunRecords(layout.records(run)).read_result()
        stored = {k for k in moto_server.objects(f"lab/{run}/") if "/.dedup/" not in k}
        assert len(stored) == result.counts.unique
        assert stored == {f"lab/{run}/{o.path}" for o in result.files if o.status == "unique"}
