"""A run's pass when the world moves under it: files deleted, growing, locked or unreadable, a run folder renamed,
a disk that fills across volumes, a new file under the name of one already sent. Nothing is lost, nothing is
overwritten, and each file ends with a clear outcome (through the real CLI, on real files)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from collections import Counter
from pathlib import Path, PurePosixPath

import pytest

from local_runner import cli, mover
from local_runner.commands import restore
from local_runner.generator import generate
from local_runner.layout import Layout
from local_runner.records import RunRecords

from conftest import tree_digest

RUN = "run-0001"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 40, 16, seed=5, progress=False).run_dir


@pytest.fixture(scope="module")
def fresh_images(tmp_path_factory) -> list[Path]:
    """Distinct images that appear in none of the runs above."""
    return sorted(generate(tmp_path_factory.mktemp("fresh"), 6, 0, seed=77, progress=False).run_dir.iterdir())


def _drop_zone(tmp_path: Path, generated: Path) -> Path:
    root = tmp_path / "W"
    shutil.copytree(generated, root / RUN)
    return root


def _run(root: Path, *extra: str) -> int:
    return cli.main([str(root), "--once", "--settle-seconds", "0", "--no-progress", "--workers", "2", *extra])


def _records(root: Path, run: str = RUN) -> RunRecords:
    return RunRecords(Layout(root).records(run))


def _sabotage_before_moves(monkeypatch, action) -> None:  # type: ignore[no-untyped-def]
    """Run ``action`` once, after the decision and before the first move: the world changes under the pass."""
    original = mover.Mover.move_all
    done = {"once": False}

    def move_all(self, moves):  # type: ignore[no-untyped-def]
        if not done["once"] and moves:
            done["once"] = True
            action()
        return original(self, moves)

    monkeypatch.setattr(mover.Mover, "move_all", move_all)


def test_a_new_file_under_an_old_name_is_kept_apart(tmp_path: Path, generated: Path, fresh_images: list[Path],
                                                     moto_server, bucket: str) -> None:
    root = _drop_zone(tmp_path, generated)
    upload = ["--upload-to", f"s3://{bucket}/lab", "--s3-endpoint-url", moto_server.endpoint_url]
    assert _run(root, *upload) == 0
    first = _records(root).read_result()
    kept = next(o for o in first.files if o.status == "unique")
    archived = next(o for o in first.files if o.status == "duplicate")
    kept_bytes = (root / kept.destination).read_bytes()
    before = Counter(tree_digest(root).values())
    # the instrument writes again under names already used: a new image, and an exact copy of the kept one
    (root / RUN / kept.path).write_bytes(fresh_images[0].read_bytes())
    (root / RUN / archived.path).write_bytes(kept_bytes)
    added = Counter(tree_digest(root / RUN).values())
    assert _run(root, *upload) == 0
    after = tree_digest(root)
    assert Counter(after.values()) == before + added  # nothing overwritten, nothing lost
    assert not any(p.startswith(f"{RUN}/") for p in after)
    result = _records(root).read_result()
    same_name = [o for o in result.files if o.path == kept.path]
    place = PurePosixPath(kept.destination)
    assert [o.destination for o in same_name] == [kept.destination,
                                                  str(place.with_name(f"{place.stem} (1){place.suffix}"))]
    assert all(after[o.destination] == o.sha256 for o in result.files)
    newer = same_name[1]
    assert newer.status == "unique" and newer.sha256 != kept.sha256
    copies = [o for o in result.files if o.path == archived.path]
    assert len(copies) == 2 and copies[1].status == "duplicate" and copies[1].destination.startswith(f"archive/{RUN}/")
    assert copies[1].sha256 == kept.sha256 and copies[1].destination != archived.destination
    assert result.counts.total == first.counts.total + 2
    stored = {k: v["sha256"] for k, v in moto_server.objects(f"lab/{RUN}/").items() if "/.dedup/" not in k}
    assert stored[f"lab/{RUN}/{kept.path}"] == kept.sha256  # the first image is still on the platform
    newer_key = f"lab/{newer.destination.split('/', 1)[1]}"  # unique/<run>/<name> -> lab/<run>/<name>
    assert newer_key != f"lab/{RUN}/{kept.path}" and stored[newer_key] == newer.sha256
    assert len(stored) == result.counts.unique
    assert _run(root, *upload) == 0
    assert _records(root).read_state().passes == 2  # decided once: the rerun changes nothing
    report = restore(Layout(root), RUN, [archived.path])  # both files of that name come back, neither overwritten
    assert len(report.restored) == 2 and report.failed == []
    assert Counter(tree_digest(root).values()) == before + added
    assert _run(root) == 0 and _records(root).read_state().passes == 2  # restored files are not decided again


def test_files_deleted_or_growing_during_the_pass(tmp_path: Path, generated: Path, monkeypatch) -> None:
    root = _drop_zone(tmp_path, generated)
    names = sorted(p.name for p in (root / RUN).iterdir())
    gone, growing = root / RUN / names[3], root / RUN / names[7]
    before = tree_digest(root)

    def meddle() -> None:
        gone.unlink()
        with growing.open("ab") as handle:
            handle.write(b"\0" * 1000)

    _sabotage_before_moves(monkeypatch, meddle)
    assert _run(root) == 0
    by_path = _records(root).read_result().by_path()
    assert by_path[gone.name].destination is None and "gone" in by_path[gone.name].error
    assert by_path[growing.name].destination is None and "changed" in by_path[growing.name].error
    after = tree_digest(root)
    assert after.pop(f"{RUN}/{growing.name}") != before.pop(f"{RUN}/{growing.name}")  # left in place, as written
    before.pop(f"{RUN}/{gone.name}")
    assert Counter(after.values()) == Counter(before.values())
    monkeypatch.undo()
    assert _run(root) == 0  # the grown file is decided on the next pass; the others are not decided again
    state = _records(root).read_state()
    assert state.passes == 2 and not (root / RUN / growing.name).exists()
    assert _records(root).read_result().by_path()[growing.name].destination is not None


def test_a_run_folder_renamed_mid_pass_loses_nothing(tmp_path: Path, generated: Path, monkeypatch) -> None:
    root = _drop_zone(tmp_path, generated)
    before = Counter(tree_digest(root).values())
    renamed = root / "run-0001 renamed"
    _sabotage_before_moves(monkeypatch, lambda: (root / RUN).rename(renamed))
    assert _run(root) == 0
    assert Counter(tree_digest(root).values()) == before
    result = _records(root).read_result()
    assert all(o.destination is None and "gone" in o.error for o in result.files)
    monkeypatch.undo()
    assert _run(root) == 0  # the folder under its new name is a run like any other
    after = tree_digest(root)
    assert Counter(after.values()) == before and not any(p.startswith(renamed.name + "/") for p in after)
    moved = _records(root, renamed.name).read_result()
    assert moved.counts.total == len(result.files) and all(after[o.destination] == o.sha256 for o in moved.files)


def test_permission_denied_is_a_per_file_error(tmp_path: Path, generated: Path, monkeypatch) -> None:
    root = _drop_zone(tmp_path, generated)
    locked = sorted((root / RUN).iterdir())[5]
    locked_bytes = locked.read_bytes()
    if os.name != "nt" and os.geteuid() != 0:
        locked.chmod(0)  # really unreadable
    else:  # root reads everything: the operating system's answer is simulated at the call that opens the file
        real_open = os.open

        def denied(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
            if Path(path) == locked:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    assert _run(root, "--workers", "1") == 0  # in this process, where the simulation applies
    outcome = _records(root).read_result().by_path()[locked.name]
    assert outcome.status == "error" and "Permission denied" in outcome.error and outcome.destination is None
    locked.chmod(0o644)
    assert locked.read_bytes() == locked_bytes
    others = [o for o in _records(root).read_result().files if o.path != locked.name]
    assert all(o.destination for o in others)


def test_a_file_held_open_by_another_program_stays_in_one_place(tmp_path: Path, generated: Path, monkeypatch) -> None:
    """Windows refuses to delete a file another program holds open: the hard link made at the destination is
    taken back, so the file is in the run folder only, and it moves on the next pass."""
    root = _drop_zone(tmp_path, generated)
    held = sorted((root / RUN).iterdir())[2]
    before = tree_digest(root)
    real_unlink = mover.FileOps.unlink

    def unlink(self, path: Path | str) -> None:  # type: ignore[no-untyped-def]
        if Path(path) == held:
            raise PermissionError(errno.EACCES, "The process cannot access the file because it is being used "
                                                "by another process", str(path))
        real_unlink(self, path)

    monkeypatch.setattr(mover.FileOps, "unlink", unlink)
    assert _run(root) == 0
    after = tree_digest(root)
    assert Counter(after.values()) == Counter(before.values())
    assert f"{RUN}/{held.name}" in after and sum(v == before[f"{RUN}/{held.name}"] for v in after.values()) == \
        sum(v == before[f"{RUN}/{held.name}"] for v in before.values())  # not duplicated by the failed move
    outcome = _records(root).read_result().by_path()[held.name]
    assert outcome.destination is None and "could not be removed" in outcome.error
    monkeypatch.undo()
    assert _run(root) == 0
    assert not (root / RUN / held.name).exists()
    assert Counter(tree_digest(root).values()) == Counter(before.values())


def test_a_disk_that_fills_across_volumes_stops_the_run_and_the_journal_finishes_it(
        tmp_path: Path, generated: Path, monkeypatch) -> None:
    root = _drop_zone(tmp_path, generated)
    before = Counter(tree_digest(root).values())
    copies = {"n": 0}
    real_copy = mover.FileOps.copy

    def cross_volume_link(self, src: Path, dst: Path) -> None:  # type: ignore[no-untyped-def]
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def copy_until_full(self, src: Path, dst: Path) -> None:  # type: ignore[no-untyped-def]
        copies["n"] += 1
        if copies["n"] > 10:
            Path(dst).write_bytes(Path(src).read_bytes()[:100])  # a partial copy, then the volume is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_copy(self, src, dst)

    monkeypatch.setattr(mover.FileOps, "link", cross_volume_link)
    monkeypatch.setattr(mover.FileOps, "copy", copy_until_full)
    assert _run(root) != 0  # the run stops, and says so
    state = _records(root).read_state()
    assert state.status == "moving" and "disk full" in state.error  # the journal still knows what is left
    assert Counter(tree_digest(root).values()) == before  # no partial copy left, nothing lost
    assert not [p for p in root.rglob("*.tmp")]
    lines = (root / ".dedup" / "logs" / "local_runner.log").read_text(encoding="utf-8")
    assert "disk full" in lines and RUN in lines
    assert json.loads((root / ".dedup" / "runs" / RUN / "state.json").read_text())["status"] == "moving"
    monkeypatch.setattr(mover.FileOps, "copy", real_copy)  # space was freed; still across volumes
    assert _run(root) == 0
    after = tree_digest(root)
    assert Counter(after.values()) == before and not any(p.startswith(f"{RUN}/") for p in after)
    result = _records(root).read_result()
    assert _records(root).read_state().status == "processed"
    assert all(after[o.destination] == o.sha256 for o in result.files)


def test_the_manifest_json_is_the_models_json(tmp_path: Path) -> None:
    """The manifest written without a model per entry is, byte for byte, what FolderManifest would write, and the
    task reads it back as the same manifest."""
    import datetime as dt

    from dedup_engine.models import FilePointer, FolderManifest, ManifestFile
    from local_runner.fs_context import FileSystemContext
    from local_runner.processing import manifest_json

    pointer = FileSystemContext(tmp_path).pointer
    files = [("a/img 1.png", 10, 1_700_000_000_000_000_001), ("é.bmp", 0, 5), ('q"uote\\.png', 3, 7)]
    kept = [ManifestFile(path="old.png", file=pointer("unique/run 1/old.png"))]
    when = dt.datetime(2026, 12, 7, 1, 2, 3, 456789, tzinfo=dt.timezone.utc)
    written = manifest_json("run 1", files, kept, pointer, when)
    expected = FolderManifest(run="run 1", created_at=when, kept=kept, files=[
        ManifestFile(path=path, size_bytes=size, mtime_ns=mtime, file=pointer(f"run 1/{path}"))
        for path, size, mtime in files[:2]] + [ManifestFile.model_construct(
            path=files[2][0], size_bytes=3, mtime_ns=7, file=FilePointer(**pointer(f"run 1/{files[2][0]}")))])
    assert written == expected.model_dump_json(indent=2).encode()
    read = FolderManifest.model_validate_json(manifest_json("run 1", files[:2], kept, pointer, when))
    assert [f.path for f in read.files] == ["a/img 1.png", "é.bmp"] and read.files[1].file.fileKey == "run 1/é.bmp"


@pytest.mark.parametrize("links", [True, False])
def test_a_first_pass_result_is_its_pass_file_until_a_move_changes_an_outcome(
        tmp_path: Path, generated: Path, monkeypatch, links: bool) -> None:
    """A first pass's result.json is its passes/0001.json (a hard link where the file system has them, else the same
    bytes written). Where every file went where the pass planned, the moves change no outcome and the result stays
    that record; where a move fails, the result is rewritten (by a rename: the pass's record stays as the decision
    wrote it) and names the failure."""
    if not links:
        def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError(errno.EPERM, "no hard links here")
        monkeypatch.setattr("local_runner.records.os.link", refuse)
    root = _drop_zone(tmp_path, generated)
    assert _run(root, "--dry-run") == 0
    records = _records(root)
    first = records.folder / "passes" / "0001.json"
    assert records.result_path.read_bytes() == first.read_bytes()
    assert (os.stat(records.result_path).st_ino == os.stat(first).st_ino) == links
    assert not list(records.folder.glob(".result.json.*"))  # no temporary name left behind
    shutil.rmtree(records.folder)

    assert _run(root) == 0  # decided and moved: every file where the pass planned it
    result = json.loads(records.result_path.read_text())
    assert records.result_path.read_bytes() == first.read_bytes()
    assert len(result["files"]) == 40 and all(o["status"] in ("unique", "duplicate") for o in result["files"])
    assert all((root / o["destination"]).is_file() for o in result["files"])
    assert not (root / RUN).exists() or not any((root / RUN).iterdir())

    shutil.rmtree(root)
    root = _drop_zone(tmp_path, generated)
    gone = sorted((root / RUN).iterdir())[3]
    _sabotage_before_moves(monkeypatch, gone.unlink)
    assert _run(root) == 0  # a file gone before its move: that outcome changes, the run goes on
    records = _records(root)
    first = records.folder / "passes" / "0001.json"
    result = json.loads(records.result_path.read_text())
    planned = json.loads(first.read_text())
    assert os.stat(records.result_path).st_ino != os.stat(first).st_ino
    changed = [o for o in result["files"] if o["path"] == gone.name]
    assert changed and changed[0]["destination"] is None and "gone" in (changed[0]["error"] or "")
    assert [o for o in planned["files"] if o["path"] == gone.name][0]["destination"]  # the record as decided


@pytest.mark.parametrize("skipped", [False, True], ids=["input-only", "with-a-skipped-entry"])
def test_the_pass_record_is_the_tasks_json_with_every_destination(tmp_path: Path, generated: Path,
                                                                   skipped: bool) -> None:
    """The task hands its result over before serialising it, and the runner sets each file's destination then: the
    pass's record is the JSON the task wrote, destinations included (or, with an entry the listing did not take
    as input, the same result with that entry, serialised again)."""
    root = _drop_zone(tmp_path, generated)
    if skipped:
        (root / RUN / "Thumbs.db").write_bytes(b"not an image")
    assert _run(root, "--dry-run") == 0
    records = _records(root)
    plan = json.loads((records.folder / "passes" / "0001.json").read_bytes())
    by_path = {o["path"]: o for o in plan["files"]}
    layout = Layout(root)
    inputs = [p.name for p in (root / RUN).iterdir() if p.name != "Thumbs.db"]
    assert sorted(by_path) == sorted(inputs + (["Thumbs.db"] if skipped else []))
    for name in inputs:
        expected = f"{layout.archive_dir if by_path[name]['status'] == 'duplicate' else layout.unique_dir}/{RUN}/{name}"
        assert by_path[name]["destination"] == expected
    if skipped:
        assert by_path["Thumbs.db"]["status"] == "skipped" and by_path["Thumbs.db"]["destination"] is None
    assert records.read_result().model_dump() == records.read_pass(1).model_dump()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim: Linux only")
def test_freed_memory_goes_back_to_the_system() -> None:
    """What a large pass's objects freed is handed back (the report's process starts beside this one): 200 MB of
    7 KB blocks, freed, leave the process's resident size within 50 MB of where it was before them."""
    from local_runner.processing import release_free_memory

    def resident() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    release_free_memory()
    before = resident()
    blocks = [os.urandom(7000) for _ in range(30_000)]
    keep = blocks[::1000]  # a few survivors scattered through the heap, as a run's results are
    assert resident() > before + 150
    del blocks
    release_free_memory()
    assert resident() < before + 50 and len(keep) == 30
