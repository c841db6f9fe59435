from __future__ import annotations

from pathlib import Path, PurePosixPath

from hypothesis import given, settings, strategies as st

from dedup_engine.models import FileOutcome
from local_runner.layout import Layout

PARTS = st.sampled_from(["run-0001", "img_1.png", "a b", "é.bmp", ".hidden", "x.y", "sub", "C:", "a:b"])


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(PARTS, min_size=1, max_size=4), run=st.sampled_from(["run-0001", "ProjA/run 2"]),
       status=st.sampled_from(["unique", "duplicate", "passthrough"]), unique=st.sampled_from(["unique", "out/u"]))
def test_the_destination_is_the_joined_posix_path(parts: list[str], run: str, status: str, unique: str) -> None:
    """The destination is folder/run/path as PurePosixPath joins them, whichever way it is computed."""
    layout = Layout(Path("/w"), unique_dir=unique)
    path = "/".join(parts)
    outcome = FileOutcome.model_construct(path=path, status=status)
    folder = layout.archive_dir if status == "duplicate" else unique
    assert layout.destination(run, outcome) == str(PurePosixPath(folder, run, path))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(PARTS, min_size=1, max_size=4), root=st.sampled_from(["/w", "/", "/w/sub dir"]))
def test_an_absolute_path_is_the_joined_os_path(parts: list[str], root: str) -> None:
    """Inside W, a "/"-separated relative path becomes W joined with its parts, whichever way it is computed."""
    layout = Layout(Path(root))
    relative = "/".join(parts)
    assert layout.absolute(relative) == Path(root).joinpath(*PurePosixPath(relative).parts)


def test_an_absolute_path_never_leaves_w() -> None:
    layout = Layout(Path("/w"))
    for bad in ["../x.png", "a/../../x.png", "/etc/passwd", "", "a//b"]:
        try:
            outside = layout.absolute(bad)
        except ValueError:
            continue
        assert outside.is_relative_to(Path("/w")) and ".." not in outside.parts, bad
