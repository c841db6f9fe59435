from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from dedup_engine.errors import MoveError
from local_runner.journal import Journal, PlannedMove
from local_runner.mover import FileOps, Mover, file_sha256


class Crash(Exception):
    pass


class CrashAt(FileOps):
    def __init__(self, at: int) -> None:
        self.at, self.count = at, 0

    def step(self, name: str) -> None:
        self.count += 1
        if self.count == self.at:
            raise Crash(name)


class NoLinks(FileOps):
    def link(self, src: Path, dst: Path) -> None:
        raise OSError(errno.EXDEV, "cross-device link")


def _files(root: Path, n: int, *, seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    shas = {}
    for i in range(n):
        path = root / "run" / ("sub" if i % 3 == 0 else "") / f"img {i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(0, 4000))
        path.write_bytes(data)
        shas[path.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return shas


def _moves(root: Path, shas: dict[str, str]) -> list[tuple[Path, Path, str]]:
    return [(root / rel, root / ("archive" if i % 2 else "unique") / rel, sha) for i, (rel, sha) in enumerate(shas.items())]


def _all_files(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): file_sha256(p) for p in root.rglob("*")
            if p.is_file() and ".dedup" not in p.parts}


def assert_each_file_once(root: Path, shas: dict[str, str]) -> None:
    found = _all_files(root)
    assert not [p for p in found if p.endswith(".tmp")], "a temporary copy was left behind"
    for rel, sha in shas.items():
        places = [p for p in found if p in (rel, f"unique/{rel}", f"archive/{rel}")]
        assert len(places) == 1, (rel, places)
        assert found[places[0]] == sha
    assert sorted(found.values()) == sorted(shas.values())  # nothing extra, nothing duplicated


@pytest.mark.parametrize("copy", [False, True], ids=["same-volume", "across-volumes"])
def test_moves_conserve_bytes_and_a_rerun_changes_nothing(tmp_path: Path, copy: bool) -> None:
    shas = _files(tmp_path, 12)
    journal = Journal(tmp_path / ".dedup" / "journal.jsonl")
    outcomes = Mover(tmp_path, journal, force_copy=copy).move_all(_moves(tmp_path, shas))
    assert all(o.ok for o in outcomes)
    assert {f"unique/{r}" for i, r in enumerate(shas) if i % 2 == 0} <= set(_all_files(tmp_path))
    assert_each_file_once(tmp_path, shas)
    before = _all_files(tmp_path)
    assert Mover(tmp_path, journal).recover() == []
    assert _all_files(tmp_path) == before


def test_cross_device_link_falls_back_to_a_verified_copy(tmp_path: Path) -> None:
    shas = _files(tmp_path, 5)
    outcomes = Mover(tmp_path, Journal(tmp_path / ".dedup" / "j.jsonl"), fs=NoLinks()).move_all(_moves(tmp_path, shas))
    assert all(o.ok for o in outcomes)
    assert_each_file_once(tmp_path, shas)


@pytest.mark.parametrize("fs_kind", ["links", "copies"])
def test_a_crash_at_every_step_is_recovered(tmp_path: Path, fs_kind: str) -> None:
    base = tmp_path / "probe"
    shas = _files(base, 6)
    counter = CrashAt(10**9) if fs_kind == "links" else type("C", (CrashAt, NoLinks), {})(10**9)
    Mover(base, Journal(base / ".dedup" / "j.jsonl"), fs=counter).move_all(_moves(base, shas))
    steps = counter.count
    assert steps >= 12
    for at in range(1, steps + 1):
        root = tmp_path / f"at{at}"
        shas = _files(root, 6)
        journal = Journal(root / ".dedup" / "j.jsonl")
        faulty = CrashAt(at) if fs_kind == "links" else type("C", (CrashAt, NoLinks), {})(at)
        with pytest.raises(Crash):
            Mover(root, journal, fs=faulty).move_all(_moves(root, shas))
        recovered = Mover(root, journal, fs=NoLinks() if fs_kind == "copies" else None).recover()
        assert all(o.ok for o in recovered), (at, recovered)
        assert journal.state().pending() == []
        assert_each_file_once(root, shas)


def test_a_destination_folder_removed_between_batches_is_made_again(tmp_path: Path) -> None:
    """The mover makes each destination folder once and remembers it; one removed meanwhile (by a person, between
    two passes of the service) is made again, and the move goes through."""
    shas = _files(tmp_path, 4)
    moves = [(tmp_path / rel, tmp_path / "unique" / rel, sha) for rel, sha in shas.items()]
    mover = Mover(tmp_path, Journal(tmp_path / ".dedup" / "j.jsonl"))
    assert all(o.ok for o in mover.move_all(moves[:1]))
    moved = moves[0][1]
    moved.rename(moves[0][0])  # taken back, and its folder removed
    for folder in [moved.parent, *moved.parent.parents][: len(moved.relative_to(tmp_path).parts) - 1]:
        folder.rmdir()
    assert not (tmp_path / "unique").exists()
    assert all(o.ok for o in mover.move_all(moves))
    assert_each_file_once(tmp_path, shas)
    assert {f"unique/{rel}" for rel in shas} == set(_all_files(tmp_path))


@pytest.mark.parametrize("fs", [None, NoLinks()], ids=["same-volume", "across-volumes"])
def test_never_overwrites_a_name_clash(tmp_path: Path, fs: FileOps | None) -> None:
    """A move planned just now does not look at its destination first (the link refuses to replace it): a clash
    is found by the link, or by the copy's link into place, and the file takes a free name."""
    shas = _files(tmp_path, 1)
    (rel, sha), = shas.items()
    taken = tmp_path / "unique" / rel
    taken.parent.mkdir(parents=True)
    taken.write_bytes(b"somebody else's file")
    journal = Journal(tmp_path / ".dedup" / "j.jsonl")
    (outcome,) = Mover(tmp_path, journal, fs=fs).move_all([(tmp_path / rel, taken, sha)])
    assert outcome.ok and outcome.dst.endswith("img 000 (1).png")
    assert taken.read_bytes() == b"somebody else's file"
    assert file_sha256(tmp_path / outcome.dst) == sha
    assert not (tmp_path / rel).exists() and not [p for p in _all_files(tmp_path) if p.endswith(".tmp")]
    assert journal.state().targets == {outcome.id: outcome.dst}


@pytest.mark.parametrize("fs", [None, NoLinks()], ids=["same-volume", "across-volumes"])
def test_a_destination_already_holding_the_bytes_takes_the_move(tmp_path: Path, fs: FileOps | None) -> None:
    """A copy with the same bytes already at the destination (a pass killed after copying, before its journal
    said so): the source is removed, and no second copy is made under another name."""
    shas = _files(tmp_path, 1)
    (rel, sha), = shas.items()
    placed = tmp_path / "unique" / rel
    placed.parent.mkdir(parents=True)
    placed.write_bytes((tmp_path / rel).read_bytes())
    (outcome,) = Mover(tmp_path, Journal(tmp_path / ".dedup" / "j.jsonl"), fs=fs).move_all([(tmp_path / rel, placed, sha)])
    assert outcome.ok and outcome.dst == f"unique/{rel}"
    assert _all_files(tmp_path) == {f"unique/{rel}": sha}


def test_moves_given_as_relative_text_are_the_same_moves(tmp_path: Path) -> None:
    """The runner hands the mover "/"-separated paths relative to the root: the same journal and outcome as
    absolute Paths; a path that would leave the root is refused before anything is planned."""
    shas = _files(tmp_path / "a", 5)
    shas_b = _files(tmp_path / "b", 5)
    as_paths = Mover(tmp_path / "a", Journal(tmp_path / "a" / ".dedup" / "j.jsonl")).move_all(_moves(tmp_path / "a", shas))
    texts = [(src.relative_to(tmp_path / "b").as_posix(), dst.relative_to(tmp_path / "b").as_posix(), sha)
             for src, dst, sha in _moves(tmp_path / "b", shas_b)]
    journal = Journal(tmp_path / "b" / ".dedup" / "j.jsonl")
    as_text = Mover(tmp_path / "b", journal).move_all(texts)
    assert [(o.src, o.dst, o.ok) for o in as_text] == [(o.src, o.dst, o.ok) for o in as_paths]
    assert_each_file_once(tmp_path / "b", shas_b)
    planned = journal.state().planned
    for bad in ("../outside.png", "/etc/passwd", "unique/../../x.png"):
        with pytest.raises(ValueError, match="not a path inside"):
            Mover(tmp_path / "b", journal).move_all([(texts[0][0], bad, "0" * 64)])
    assert journal.state().planned == planned


def test_a_changed_source_is_left_in_place(tmp_path: Path) -> None:
    shas = _files(tmp_path, 1)
    (rel, sha), = shas.items()
    journal = Journal(tmp_path / ".dedup" / "j.jsonl")
    journal.append_plan([PlannedMove(1, rel, f"unique/{rel}", sha, 999_999, None)])
    (outcome,) = Mover(tmp_path, journal).recover()
    assert not outcome.ok and "changed" in outcome.error
    assert file_sha256(tmp_path / rel) == sha and not (tmp_path / "unique").exists()


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"precious")
    (tmp_path / "run").mkdir()
    link = tmp_path / "run" / "link.png"
    link.symlink_to(outside)
    (outcome,) = Mover(tmp_path, Journal(tmp_path / "j.jsonl")).move_all([(link, tmp_path / "unique/run/link.png", "0" * 64)])
    assert not outcome.ok and "symbolic link" in outcome.error
    assert link.is_symlink() and outside.read_bytes() == b"precious"


class DiskFull(NoLinks):
    def copy(self, src: Path, dst: Path) -> None:
        with open(dst, "xb") as handle:
            handle.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_stops_cleanly_and_the_journal_finishes_later(tmp_path: Path) -> None:
    shas = _files(tmp_path, 4)
    journal = Journal(tmp_path / ".dedup" / "j.jsonl")
    with pytest.raises(MoveError, match="disk full"):
        Mover(tmp_path, journal, fs=DiskFull()).move_all(_moves(tmp_path, shas))
    assert not list(tmp_path.rglob("*.tmp"))
    assert_each_file_once(tmp_path, shas)  # all still in the run folder
    assert all(o.ok for o in Mover(tmp_path, journal, fs=NoLinks()).recover())
    assert_each_file_once(tmp_path, shas)
    assert not list((tmp_path / "run").rglob("*.png"))


def test_empty_folders_are_pruned_but_not_the_run_folder(tmp_path: Path) -> None:
    (tmp_path / "run" / "a" / "b").mkdir(parents=True)
    (tmp_path / "run" / "c").mkdir()
    (tmp_path / "run" / "c" / "keep.txt").write_text("x")
    assert Mover(tmp_path, Journal(tmp_path / "j.jsonl")).prune_empty_dirs(tmp_path / "run") == 2
    assert (tmp_path / "run").is_dir() and (tmp_path / "run" / "c" / "keep.txt").exists()


KILL_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from local_runner.journal import Journal
    import time
    from local_runner.mover import FileOps, Mover

    class Slow(FileOps):  # about a millisecond per step, so a kill lands inside the run
        def step(self, name):
            time.sleep(0.001)

    root = Path(sys.argv[1])
    moves = [(root / line.split("\\t")[0], root / line.split("\\t")[1], line.split("\\t")[2])
             for line in Path(sys.argv[2]).read_text().splitlines()]
    print("ready", flush=True)
    Mover(root, Journal(root / ".dedup" / "j.jsonl"), fs=Slow(), force_copy=sys.argv[3] == "copy").move_all(moves)
""")


@pytest.mark.parametrize("trial", range(4))
def test_sigkill_at_a_random_instant_loses_nothing(tmp_path: Path, trial: int) -> None:
    root = tmp_path / "w"
    shas = _files(root, 200, seed=trial)
    plan = tmp_path / "plan.tsv"
    plan.write_text("\n".join(f"{s.relative_to(root)}\t{d.relative_to(root)}\t{h}" for s, d, h in _moves(root, shas)))
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT)
    with subprocess.Popen([sys.executable, str(script), str(root), str(plan), "copy" if trial % 2 else "link"],
                          stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        time.sleep(random.Random(trial).uniform(0.03, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    journal = Journal(root / ".dedup" / "j.jsonl")
    assert journal.state().pending(), "the kill should land while moves are under way"
    Mover(root, journal).recover()
    assert journal.state().pending() == []
    assert_each_file_once(root, shas)


EXIT_SCRIPT = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from local_runner.journal import Journal
    from local_runner.mover import FileOps, Mover

    class ExitAt(FileOps):  # the process ends at the given link, as a kill would: no buffer is written out
        links = 0
        def step(self, name):
            if name == "link":
                self.links += 1
                if self.links == int(sys.argv[3]):
                    os._exit(9)

    root = Path(sys.argv[1])
    moves = [(root / line.split("\\t")[0], root / line.split("\\t")[1], line.split("\\t")[2])
             for line in Path(sys.argv[2]).read_text().splitlines()]
    Mover(root, Journal(root / ".dedup" / "j.jsonl"), fs=ExitAt()).move_all(moves)
""")


def test_finished_moves_whose_records_a_kill_lost_are_recognised(tmp_path: Path) -> None:
    """A finished move's record waits in the journal's buffer (see Journal.mark_done): a kill loses the last ones.
    Recovery finds those moves finished (the source gone, the destination holding its bytes) and records them."""
    root = tmp_path / "w"
    shas = _files(root, 40)
    plan = tmp_path / "plan.tsv"
    plan.write_text("\n".join(f"{s.relative_to(root)}\t{d.relative_to(root)}\t{h}" for s, d, h in _moves(root, shas)))
    script = tmp_path / "exit_at.py"
    script.write_text(EXIT_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(root), str(plan), "31"], timeout=60)
    assert done.returncode == 9
    journal = Journal(root / ".dedup" / "j.jsonl")
    state = journal.state()
    assert len(state.planned) == 40 and state.done == {}  # 30 moves finished, none of them recorded
    moved = [rel for rel in shas if not (root / rel).exists()]
    assert len(moved) == 30
    outcomes = Mover(root, journal).recover()
    assert len(outcomes) == 40 and all(o.ok for o in outcomes)
    assert journal.state().pending() == []
    assert_each_file_once(root, shas)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.sampled_from(["run-1", "a.png", ".hidden", "x y", "é", "b.c", "C:"]), min_size=1,
                      max_size=4), root=st.sampled_from(["/w", "/", "/w/sub dir"]))
def test_paths_relative_to_the_root_as_pathlib_gives_them(parts: list[str], root: str) -> None:
    """The mover's paths, made as text where that is safe, are pathlib's (relative_to / joinpath)."""
    mover = Mover(Path(root), Journal(Path("/nonexistent/j.jsonl")))
    relative = "/".join(parts)
    absolute = Path(root).joinpath(*parts)
    assert mover._text(relative) == os.fspath(absolute)
    assert mover._rel(absolute) == absolute.relative_to(Path(root)).as_posix() == relative
    assert mover._relative(relative) == mover._relative(absolute) == relative
