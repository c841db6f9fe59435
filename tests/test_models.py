from __future__ import annotations

import json
import re

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

from dedup_engine import DedupParams, DedupResult, FolderManifest, dedup
from local_runner.schema_export import DEFAULT_DIR, MODELS, render


@pytest.mark.parametrize("name", sorted(MODELS))
def test_checked_in_schema_matches_the_models(name: str) -> None:
    path = DEFAULT_DIR / f"{name}.schema.json"
    assert path.read_text(encoding="utf-8") == render(MODELS[name]), (
        f"{path.name} is out of date: run `python -m local_runner.schema_export`"
    )


def test_a_real_result_validates_against_its_schema(engine_data) -> None:
    sources = [(p.name, p.read_bytes()) for p in sorted(engine_data.glob("*.bmp"))[:10]]
    result = dedup("r", sources, DedupParams(), workers=1)
    schema = json.loads((DEFAULT_DIR / "dedup-result.schema.json").read_text())
    jsonschema.validate(json.loads(result.model_dump_json()), schema)
    assert DedupResult.model_validate_json(result.model_dump_json()) == result


def test_opencv_is_accepted_for_mse_and_params_are_frozen() -> None:
    params = DedupParams(method="opencv")
    assert params.method == "mse"
    with pytest.raises(ValidationError):
        params.max_distance = 3  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        DedupParams(max_distanse=3)  # type: ignore[call-arg]


@pytest.mark.parametrize("bad", ["../x.png", "/etc/passwd", "C:/x.png", "a/../b.png", "a\\\\b.png", "", "a//b.png"])
def test_manifest_paths_stay_inside_the_run(bad: str) -> None:
    with pytest.raises(ValidationError):
        FolderManifest(run="r", files=[{"path": bad}])


def test_manifest_refuses_a_path_listed_twice() -> None:
    with pytest.raises(ValidationError, match="twice"):
        FolderManifest(run="r", files=[{"path": "a.png"}, {"path": "a.png"}])


@settings(max_examples=400, deadline=None)
@given(path=st.one_of(
    st.text(alphabet=st.sampled_from(list("ab.:/\\\x00 \n_é")), max_size=12),
    st.lists(st.sampled_from(["run", ".", "..", "", "a.png", ".hidden", "C:", "x\\y", "img 1.bmp", "\x00"]),
             min_size=1, max_size=4).map("/".join),
))
def test_the_plain_path_shortcut_gives_what_the_checks_give(path: str) -> None:
    """check_relative_path's one-match shortcut accepts only paths the full checks accept, unchanged."""
    from dedup_engine import models

    def checked(value: str) -> str | None:
        try:
            return models.check_relative_path(value)
        except ValueError:
            return None

    if models.PLAIN_PATH.fullmatch(path):
        match = models.PLAIN_PATH  # the checks alone, without the shortcut, must give the same path
        try:
            models.PLAIN_PATH = re.compile(r"(?!)")  # matches nothing
            assert checked(path) == path
        finally:
            models.PLAIN_PATH = match
    else:
        assert checked(path) is None or checked(path) != path or "." in path or ":" in path


def test_the_plain_path_shortcut_refuses_what_it_must() -> None:
    from dedup_engine.models import check_relative_path

    assert check_relative_path("run/a_1.png") == "run/a_1.png"
    for bad in ["../a.png", "a/../b.png", "/abs.png", "C:/x.png", "a\\b.png", "a//b.png", "./a.png", "a/", ""]:
        with pytest.raises(ValueError):
            check_relative_path(bad)
