"""The file-system stand-in for the TetraScience context: it reads inside the watched folder and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dedup_engine.errors import InputError
from local_runner.fs_context import FileReader, FileSystemContext, read_to_end


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "W" / "run" / "sub").mkdir(parents=True)
    (tmp_path / "W" / "run" / "sub" / "a.png").write_bytes(b"inside")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.png").write_bytes(b"outside")
    return tmp_path / "W"


@pytest.mark.parametrize("key", ["../secret/key.png", "/etc/passwd", "run/../../secret/key.png", "run\\..\\x.png",
                                 ""])
def test_pointers_that_leave_the_folder_are_refused(root: Path, key: str) -> None:
    context = FileSystemContext(root)
    with pytest.raises(InputError, match="pointer"):
        context.read_file({"fileKey": key})


@pytest.mark.parametrize("pointer", [{}, {"fileKey": None}, {"bucket": "b"}, "run/sub/a.png", None])
def test_malformed_pointers_are_refused(root: Path, pointer: object) -> None:
    with pytest.raises(InputError, match="fileKey"):
        FileSystemContext(root).read_file(pointer)  # type: ignore[arg-type]


def test_symbolic_links_are_not_followed_anywhere_in_the_path(root: Path) -> None:
    os.symlink(root.parent / "secret", root / "run" / "door", target_is_directory=True)
    os.symlink(root.parent / "secret" / "key.png", root / "run" / "key.png")
    context = FileSystemContext(root)
    with pytest.raises(InputError, match="symbolic link 'door'"):
        context.read_file({"fileKey": "run/door/key.png"})
    with pytest.raises(OSError):
        FileReader(str(root / "run" / "key.png"))()  # the last component: refused by O_NOFOLLOW
    assert context.read_file({"fileKey": "run/sub/a.png"})["body"] == b"inside"


def test_an_output_folder_may_live_on_another_volume(root: Path) -> None:
    (root.parent / "other").mkdir()
    (root.parent / "other" / "k.png").write_bytes(b"kept")
    os.symlink(root.parent / "other", root / "unique", target_is_directory=True)
    assert FileSystemContext(root, linked_dirs=frozenset({"unique"})).read_file({"fileKey": "unique/k.png"})["body"] \
        == b"kept"
    with pytest.raises(InputError):
        FileSystemContext(root).read_file({"fileKey": "unique/k.png"})


@pytest.mark.parametrize("key", ["run/sub/a.png", "a.png", "run/./sub/a.png", "run//sub/a.png", "run/sub/.a.png",
                                 "run/door/key.png", "../secret/key.png", "/etc/passwd", "run\\x.png", ""])
def test_a_byte_source_reads_what_read_file_reads_and_refuses_what_it_refuses(root: Path, key: str) -> None:
    """``byte_source`` joins plain keys as text under a folder it checked once; any other key takes read_file's
    path. Either way the same file, or the same refusal."""
    os.symlink(root.parent / "secret", root / "run" / "door", target_is_directory=True)
    (root / "a.png").write_bytes(b"top")
    (root / "run" / "sub" / ".a.png").write_bytes(b"hidden")
    context = FileSystemContext(root)
    try:
        expected = str(context._path({"fileKey": key}))
    except InputError as refusal:
        with pytest.raises(InputError, match=str(refusal).split(" ")[0]):
            context.byte_source({"fileKey": key})
        return
    for _ in range(2):  # its folder checked, then remembered
        reader = context.byte_source({"fileKey": key})
        assert reader.path == expected or Path(reader.path) == Path(expected)
        assert reader() == context.read_file({"fileKey": key})["body"]


def test_only_processed_and_ids_files_are_written(root: Path) -> None:
    context = FileSystemContext(root)
    pointer = context.write_file("{}", "result.json", "PROCESSED")
    assert context.read_file(pointer)["body"] == b"{}"
    with pytest.raises(InputError, match="RAW"):
        context.write_file("{}", "x.json", "RAW")


@pytest.mark.parametrize("applies", [False, True])
def test_the_task_labels_files_only_where_files_carry_labels(tmp_path: Path, applies: bool) -> None:
    """On a disk the result is the record: the task applies no label (no pool of label calls beside the
    decisions); a context that says it carries labels gets one per file."""
    from local_runner.generator import generate
    from task_script_fixtures import load_main

    made = generate(tmp_path / "gen", 30, 10, seed=4, progress=False)
    context = FileSystemContext(tmp_path / "gen", applies_labels=applies, workers=1)
    files = [{"fileKey": f"run-0001/{p.name}"} for p in sorted(made.run_dir.iterdir())]
    summary = load_main().dedup({"files": files}, context)
    assert summary["counts"]["total"] == 30
    assert summary["labelled"] == (30 if applies else 0)
    assert len(context.labels) == (30 if applies else 0)


def test_the_kept_result_is_the_result_the_task_writes(tmp_path: Path) -> None:
    """A context with ``keep_result`` gets the result object the task serialises: equal to its JSON read back."""
    from dedup_engine.models import DedupResult
    from local_runner.generator import generate
    from task_script_fixtures import load_main

    made = generate(tmp_path / "gen", 30, 10, seed=5, progress=False)
    kept: list[DedupResult] = []
    context = FileSystemContext(tmp_path / "gen", workers=1, keep_result=kept.append)
    files = [{"fileKey": f"run-0001/{p.name}"} for p in sorted(made.run_dir.iterdir())]
    load_main().dedup({"files": files}, context)
    written = [w for w in context.written.values() if w.file_category == "PROCESSED"]
    assert len(kept) == 1 and len(written) == 1
    assert kept[0] == DedupResult.model_validate_json(written[0].content)
    assert kept[0].counts.duplicate > 0 and kept[0].model_dump_json(indent=2).encode() == written[0].content


@pytest.mark.parametrize("content", [b"", b"x", os.urandom(3 * 2**20 + 17)])
@pytest.mark.parametrize("told", ["exact", "smaller", "larger", "zero"])
def test_read_to_end_gives_every_byte_whatever_size_it_was_told(tmp_path: Path, content: bytes, told: str) -> None:
    """One read for a file of the size fstat gave; a file that grew since (told smaller) or shrank (told larger)
    is read to its end all the same, as a buffered read would."""
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    size = {"exact": len(content), "smaller": max(len(content) - 5, 0), "larger": len(content) + 1000,
            "zero": 0}[told]
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_to_end(fd, size) == content
    finally:
        os.close(fd)
    assert FileReader(str(path))() == content


def test_a_reader_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="not a regular file"):
        FileReader(str(tmp_path))()
