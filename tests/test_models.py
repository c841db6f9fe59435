from __future__ import annotations

import json

import jsonschema
import pytest
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
