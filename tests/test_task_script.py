from __future__ import annotations

import json
from pathlib import Path

import pytest
from ts_sdk.taskdev import Context, load_test_file
from ts_sdk.testing.models import LocalFile, Task, TaskScript, Workflow
from ts_sdk.testing.result import Err, Ok

from dedup_engine import DedupResult
from dedup_engine.errors import InputError
from task_script_fixtures import TASK_DIR, load_main

main = load_main()


class RecordingContext(Context):
    """The SDK's development context, also keeping the labels (its add_labels drops them)."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: dict[str, dict[str, str]] = {}

    def add_labels(self, file, labels):  # same signature as the taskdev Context: no no_propagate
        self.labels.setdefault(file["fileKey"], {}).update({l["name"]: l["value"] for l in labels})
        return {}


def _pick(engine_truth: dict) -> tuple[list[str], dict[str, str]]:
    pairs = engine_truth["duplicate_pairs"][:3]
    negatives = engine_truth["hard_negatives"][0]["originals"][:2]
    copies = {p["copy"]: p["original"] for p in pairs}
    names = [p["original"] for p in pairs] + list(copies) + negatives
    return names, copies


def _written(context: Context) -> list[tuple[str, dict]]:
    return [(k, v) for k, v in context._storage.items() if v["metadata"]["TS_FILE_CATEGORY"] == "PROCESSED"]


def test_files_input_on_the_development_context(engine_data: Path, engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    context = RecordingContext()
    pointers = [load_test_file(context, engine_data / n, f"lab/src/RAW/run-9/{n}", mode="rb", file_category="RAW")
                for n in names]
    summary = main.dedup({"files": pointers}, context)
    json.dumps(summary)  # JSON-serialisable
    (_, written), = _written(context)
    result = DedupResult.model_validate_json(written["body"])
    assert result.run == "run-9" and summary["counts"]["total"] == len(names)
    by_path = result.by_path()
    for copy, original in copies.items():  # one of each pair is kept (the first in path order), the other points to it
        kept, archived = sorted((copy, original), key=lambda n: by_path[n].status != "unique")
        assert by_path[kept].status == "unique" and by_path[archived].duplicate_of == kept
    duplicates = {o.path for o in result.files if o.status == "duplicate"}
    assert len(duplicates) == len(copies)
    assert all(p in copies or p in copies.values() for p in duplicates)  # no distinct look-alike archived
    for outcome in result.files:
        assert outcome.file_key == f"lab/src/RAW/run-9/{outcome.path}"
        labels = context.labels[outcome.file_key]
        assert labels["dedup-status"] == outcome.status
        assert labels.get("dedup-duplicate-of") == outcome.duplicate_of


def test_manifest_input_through_the_sdk_runner(engine_data: Path, engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    script = TaskScript.from_manifest(str(TASK_DIR / "manifest.json"))
    with Workflow(org_slug="imaging-lab") as workflow:
        files = {n: LocalFile(path=str(engine_data / n), org_slug="imaging-lab", source_id="cytpix",
                              name=f"run-3/{n}", labels=[]) for n in names}
        manifest = {"schema_version": 1, "run": "run-3",
                    "files": [{"path": n, "file": f.to_file_pointer()} for n, f in files.items()]}
        trigger = LocalFile(path=_write(engine_data.parent / "_tmp_manifest.json", manifest), org_slug="imaging-lab",
                            source_id="cytpix", name="run-3.manifest.json", labels=[])
        outcome = Task(function=script.function("dedup"), workflow=workflow).run(
            {"manifest": trigger.to_file_pointer(), "max_distance": "10"})
    (engine_data.parent / "_tmp_manifest.json").unlink()
    assert isinstance(outcome, Ok), outcome
    assert outcome.value["counts"]["duplicate"] == len(copies)
    labels = {name: {label.name: label.value for label in file.labels} for name, file in files.items()}
    pair_of = {**copies, **{v: k for k, v in copies.items()}}
    for name, these in labels.items():
        if these["dedup-status"] == "duplicate":
            assert these["dedup-duplicate-of"] == pair_of[name]  # points to its own pair, kept
            assert labels[pair_of[name]]["dedup-status"] == "unique"
        else:
            assert these["dedup-status"] == "unique" and "dedup-duplicate-of" not in these


def _write(path: Path, payload: dict) -> str:
    path.write_text(json.dumps(payload))
    return str(path)


BAD_INPUTS = [
    ({}, "exactly one"),
    ({"files": []}, "files"),
    ({"files": "a.png"}, "files"),
    ({"files": [{"bucket": "b"}]}, "fileKey"),
    ({"files": [{"fileKey": "a/x.png"}], "manifest": {"fileKey": "m.json"}}, "exactly one"),
    ({"files": [{"fileKey": "a/x.png"}], "method": "fourier"}, "method"),
    ({"files": [{"fileKey": "a/x.png"}], "max_distance": "many"}, "max_distance"),
    ({"files": [{"fileKey": "a/x.png"}], "surprise": 1}, "surprise"),
]


@pytest.mark.parametrize(("payload", "words"), BAD_INPUTS)
def test_unusable_input_is_fatal_and_writes_nothing(payload: dict, words: str) -> None:
    context = RecordingContext()
    with pytest.raises(InputError, match=words):
        main.dedup(payload, context)
    assert not _written(context) and not context.labels


@pytest.mark.parametrize("manifest", [
    b"not json at all",
    json.dumps({"run": "r", "files": [{"path": "../outside.png", "file": {"fileKey": "k"}}]}).encode(),
    json.dumps({"run": "r", "files": [{"path": "/etc/passwd", "file": {"fileKey": "k"}}]}).encode(),
    json.dumps({"run": "r", "files": [{"path": "a.png", "file": {"bucket": "no-key"}}]}).encode(),
    json.dumps({"run": "r", "files": []}).encode(),
])
def test_bad_manifests_are_fatal_and_write_nothing(manifest: bytes) -> None:
    context = RecordingContext()
    pointer = context.write_file(manifest, "manifest.json", "RAW")
    context._storage["manifest.json"]["metadata"]["TS_FILE_CATEGORY"] = "RAW"
    with pytest.raises(InputError, match="manifest|unusable"):
        main.dedup({"manifest": pointer}, context)
    assert not _written(context) and not context.labels


def test_fatal_error_goes_through_the_sdk_runner_as_an_error(engine_data: Path, capfd) -> None:
    script = TaskScript.from_manifest(str(TASK_DIR / "manifest.json"))
    with Workflow(org_slug="imaging-lab") as workflow:
        outcome = Task(function=script.function("dedup"), workflow=workflow).run({"files": []})
    assert isinstance(outcome, Err)
    printed = capfd.readouterr()
    assert "unusable input" in printed.out + printed.err


def test_pipeline_config_gives_defaults_and_input_overrides_them(engine_data: Path, engine_truth: dict) -> None:
    names, _ = _pick(engine_truth)
    context = RecordingContext()
    context._pipeline_config = {"method": "mse", "max_mse": "25", "keep": ""}
    pointers = [load_test_file(context, engine_data / n, f"s/run/{n}", mode="rb", file_category="RAW") for n in names]
    main.dedup({"files": pointers, "max_mse": 30}, context)
    (_, written), = _written(context)
    params = DedupResult.model_validate_json(written["body"]).params
    assert params.method == "mse" and params.max_mse == 30 and params.keep == "first"


def test_container_requirements_pin_what_the_repository_pins() -> None:
    def pins(path: Path) -> dict[str, str]:
        found = {}
        for line in path.read_text().splitlines():
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                found[name.split("[")[0].lower()] = version
        return found

    container = pins(TASK_DIR / "requirements.txt")
    repository = pins(TASK_DIR.parent / "requirements.txt")
    assert container and all(repository.get(name) == version for name, version in container.items())
    imported = {"pydantic", "imagehash", "pillow", "numpy", "opencv-python-headless"}
    assert imported <= set(container)
    dockerfile = (TASK_DIR / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and f"ts-sdk=={repository['ts-sdk']}" in dockerfile
