from __future__ import annotations

import hashlib
import json
import threading
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
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


def _run_files(context: Context, engine_data: Path, names: list[str], folder: str) -> tuple[dict, DedupResult]:
    """The task on ``{"files": ...}`` of ``names`` loaded under ``folder``; its summary and the result it wrote."""
    pointers = [load_test_file(context, engine_data / n, f"{folder}/{n}", mode="rb", file_category="RAW")
                for n in names]
    summary = main.dedup({"files": pointers}, context)
    (_, written), = _written(context)
    return summary, DedupResult.model_validate_json(written["body"])


def test_files_input_on_the_development_context(engine_data: Path, engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    context = RecordingContext()
    summary, result = _run_files(context, engine_data, names, "lab/src/RAW/run-9")
    json.dumps(summary)  # JSON-serialisable
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
    repository = pins(TASK_DIR.parent / "requirements.txt") | pins(TASK_DIR.parent / "requirements-runtime.txt")
    assert container and all(repository.get(name) == version for name, version in container.items())
    imported = {"pydantic", "imagehash", "pillow", "numpy", "opencv-python-headless"}
    assert imported <= set(container)
    dockerfile = (TASK_DIR / "Dockerfile").read_text()
    assert "requirements.txt" in dockerfile and f"ts-sdk=={repository['ts-sdk']}" in dockerfile


# --- the data lake as it really behaves: slow, throttling, missing files, a manifest that comes before its files ---

def _client_error(code: str, status: int, operation: str = "GetObject") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


class ThrottlingContext(RecordingContext):
    """Throttles the first read and the first label of every file, as S3 (503 SlowDown) and the API (429) do."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _count(self, kind: str, key: str) -> int:
        with self._lock:
            self.calls[kind, key] = self.calls.get((kind, key), 0) + 1
            return self.calls[kind, key]

    def read_file(self, file, form="body"):
        if self._count("read", file["fileKey"]) == 1:
            raise _client_error("SlowDown", 503)
        return super().read_file(file, form)

    def add_labels(self, file, labels):
        if self._count("label", file["fileKey"]) == 1:
            raise Exception('{"message": "Too Many Requests"}')  # what ts-sdk raises for a 429 answer
        return super().add_labels(file, labels)


def test_reads_and_labels_throttled_once_are_retried_and_end_up_fine(engine_data: Path, engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    context = ThrottlingContext()
    summary, result = _run_files(context, engine_data, names, "lab/run-5")
    assert summary["counts"]["error"] == 0 and summary["counts"]["duplicate"] == len(copies)
    assert summary["labelled"] == len(names) and summary["label_failures"] == {}
    assert {k: n for (kind, k), n in context.calls.items()} == {f"lab/run-5/{n}": 2 for n in names}
    assert all(context.labels[o.file_key]["dedup-status"] == o.status for o in result.files)
    assert not any(o.label_error for o in result.files)


class BrokenLakeContext(RecordingContext):
    """Some files are gone (NoSuchKey), and one file's label is refused for good."""

    def __init__(self, gone: set[str], unlabellable: str) -> None:
        super().__init__()
        self.gone, self.unlabellable = gone, unlabellable

    def read_file(self, file, form="body"):
        if file["fileKey"] in self.gone:
            raise _client_error("NoSuchKey", 404)
        return super().read_file(file, form)

    def add_labels(self, file, labels):
        if file["fileKey"] == self.unlabellable:
            raise PermissionError("403 Forbidden: the label API refused this file")
        return super().add_labels(file, labels)


def test_unreadable_files_become_errors_while_the_rest_are_decided(engine_data: Path, engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    gone = names[-1]  # a distinct look-alike, no pair depends on it
    context = BrokenLakeContext({f"lab/run-6/{gone}"}, unlabellable=f"lab/run-6/{names[0]}")
    summary, result = _run_files(context, engine_data, names, "lab/run-6")
    by_path = result.by_path()
    assert by_path[gone].status == "error" and "NoSuchKey" in by_path[gone].error
    assert summary["counts"] == {"total": len(names), "unique": len(names) - len(copies) - 1,
                                 "duplicate": len(copies), "error": 1, "passthrough": 0, "skipped": 0, "restored": 0}
    assert context.labels[f"lab/run-6/{gone}"]["dedup-status"] == "error"
    # the label that failed is named in the summary and in the result, never dropped
    assert summary["labelled"] == len(names) - 1 and list(summary["label_failures"]) == [names[0]]
    assert "403 Forbidden" in summary["label_failures"][names[0]]
    assert "403 Forbidden" in by_path[names[0]].label_error
    assert f"lab/run-6/{names[0]}" not in context.labels
    # every outcome, the unreadable one too, carries its pointer; only the unlabelled one a label error
    assert all(o.file_key == f"lab/run-6/{o.path}" for o in result.files)
    assert [o.path for o in result.files if o.label_error] == [names[0]]


def _runner_manifest(engine_data: Path, names: list[str], run: str) -> dict:
    """A manifest as the local runner's label-only mode writes it: run-relative paths, sizes, sha256, no pointers."""
    return {"schema_version": 1, "run": run, "files": [
        {"path": n, "size_bytes": (engine_data / n).stat().st_size,
         "sha256": hashlib.sha256((engine_data / n).read_bytes()).hexdigest()} for n in names]}


def _run_on_sdk_lake(tmp_path: Path, engine_data: Path, names: list[str], uploaded: dict[str, Path],
                     manifest: dict, **extra: str) -> tuple[object, dict[str, dict[str, str]]]:
    script = TaskScript.from_manifest(str(TASK_DIR / "manifest.json"))
    with Workflow(org_slug="imaging-lab") as workflow:
        # what the agent uploaded from the run folder: the images and the manifest, in one bucket, side by side (a
        # bucket of this run's own: the SDK's test data lake is shared by every workflow of the session)
        bucket = f"lake-{uuid.uuid4().hex}"
        files = {n: LocalFile(path=str(p), org_slug="imaging-lab", source_id="agent-1", name=f"Imaging/run-7/{n}",
                              labels=[], bucket=bucket) for n, p in uploaded.items()}
        trigger = LocalFile(path=_write(tmp_path / "dedup-manifest.json", manifest), org_slug="imaging-lab",
                            source_id="agent-1", name="Imaging/run-7/dedup-manifest.json", labels=[], bucket=bucket)
        outcome = Task(function=script.function("dedup"), workflow=workflow).run(
            {"manifest": trigger.to_file_pointer(), **extra})
        labels = {n: {label.name: label.value for label in f.labels} for n, f in files.items()}
    return outcome, labels


def test_runner_manifest_finds_its_files_beside_it_and_labels_them(tmp_path: Path, engine_data: Path,
                                                                   engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    manifest = _runner_manifest(engine_data, names, "run-7")
    outcome, labels = _run_on_sdk_lake(tmp_path, engine_data, names, {n: engine_data / n for n in names}, manifest)
    assert isinstance(outcome, Ok), outcome
    assert outcome.value["labelled"] == len(names) and outcome.value["counts"]["duplicate"] == len(copies)
    assert sorted(n for n, these in labels.items() if these["dedup-status"] == "duplicate") == sorted(
        n for n in names if labels[n].get("dedup-duplicate-of"))
    assert sum(these["dedup-status"] == "duplicate" for these in labels.values()) == len(copies)


def test_manifest_whose_files_are_not_all_in_the_lake_is_fatal_and_labels_nothing(
        tmp_path: Path, engine_data: Path, engine_truth: dict, capfd) -> None:
    names, _ = _pick(engine_truth)
    late = sorted(names)[:2]  # the agent has not uploaded these yet
    manifest = _runner_manifest(engine_data, names, "run-7")
    outcome, labels = _run_on_sdk_lake(tmp_path, engine_data, names,
                                       {n: engine_data / n for n in names if n not in late}, manifest)
    assert isinstance(outcome, Err)
    printed = capfd.readouterr()
    message = printed.out + printed.err
    assert f"2 not in the data lake (yet): {late[0]}, {late[1]}" in message
    assert "Nothing was labelled" in message
    assert all(not these for these in labels.values())


def test_manifest_sha256_mismatch_is_fatal_and_labels_nothing(tmp_path: Path, engine_data: Path,
                                                              engine_truth: dict, capfd) -> None:
    names, _ = _pick(engine_truth)
    changed = names[1]
    other = tmp_path / "other.png"
    other.write_bytes((engine_data / changed).read_bytes() + b"\0")  # one byte more: another version of the file
    manifest = _runner_manifest(engine_data, names, "run-7")
    uploaded = {n: (other if n == changed else engine_data / n) for n in names}
    outcome, labels = _run_on_sdk_lake(tmp_path, engine_data, names, uploaded, manifest)
    assert isinstance(outcome, Err)
    printed = capfd.readouterr()
    assert f"1 in the data lake with other bytes than the manifest's sha256: {changed}" in printed.out + printed.err
    assert all(not these for these in labels.values())


def test_manifest_files_found_under_a_configured_prefix(tmp_path: Path, engine_data: Path, engine_truth: dict,
                                                        capfd) -> None:
    names, _ = _pick(engine_truth)
    manifest = _runner_manifest(engine_data, names, "run-7")
    uploaded = {n: engine_data / n for n in names}
    # the files are beside the manifest; a prefix that names another folder finds none of them
    outcome, _ = _run_on_sdk_lake(tmp_path, engine_data, names, uploaded, manifest,
                                  lake_prefix="imaging-lab/agent-1/RAW/Elsewhere/{run}")
    assert isinstance(outcome, Err)
    printed = capfd.readouterr()
    assert f"{len(names)} not in the data lake (yet)" in printed.out + printed.err
    assert "imaging-lab/agent-1/RAW/Elsewhere/run-7" in printed.out + printed.err
    outcome, labels = _run_on_sdk_lake(tmp_path, engine_data, names, uploaded, manifest,
                                       lake_prefix="imaging-lab/agent-1/RAW/Imaging/{run}")
    assert isinstance(outcome, Ok), outcome
    assert all(these["dedup-status"] in ("unique", "duplicate") for these in labels.values())


class CountingContext(RecordingContext):
    """Counts the reads of each key; some keys are not in the lake (KeyError, as the development context raises)."""

    def __init__(self, gone: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.reads: dict[str, int] = {}
        self.gone = gone
        self._lock = threading.Lock()

    def read_file(self, file, form="body"):
        with self._lock:
            self.reads[file["fileKey"]] = self.reads.get(file["fileKey"], 0) + 1
        if file["fileKey"] in self.gone:
            raise KeyError(file["fileKey"])
        return super().read_file(file, form)


def _run_manifest_on_taskdev(tmp_path: Path, context: Context, uploaded: dict[str, Path], manifest: dict) -> dict:
    """The agent's upload into the development context's lake (lab/run-8/<path>), then the task on the manifest."""
    for name, path in uploaded.items():
        load_test_file(context, path, f"lab/run-8/{name}", mode="rb", file_category="RAW")
    trigger = load_test_file(context, _write(tmp_path / "dedup-manifest.json", manifest), "lab/run-8/dedup-manifest.json",
                             mode="rb", file_category="RAW")
    return main.dedup({"manifest": trigger}, context)


def test_a_manifest_run_reads_each_file_once_and_checks_its_sha256(tmp_path: Path, engine_data: Path,
                                                                   engine_truth: dict) -> None:
    names, copies = _pick(engine_truth)
    context = CountingContext()
    summary = _run_manifest_on_taskdev(tmp_path, context, {n: engine_data / n for n in names},
                                       _runner_manifest(engine_data, names, "run-8"))
    assert context.reads == {f"lab/run-8/{n}": 1 for n in [*names, "dedup-manifest.json"]}
    assert summary["labelled"] == len(names) and summary["counts"]["duplicate"] == len(copies)
    assert set(context.labels) == {f"lab/run-8/{n}" for n in names}


def test_same_size_other_bytes_are_caught_on_the_outcome_and_nothing_is_labelled(tmp_path: Path, engine_data: Path,
                                                                                 engine_truth: dict) -> None:
    names, _ = _pick(engine_truth)
    changed = sorted(names)[-1]  # decided last: every other file's outcome (and label) was ready before it
    data = bytearray((engine_data / changed).read_bytes())
    data[-1] ^= 0xFF  # one pixel of another value: the same size, other bytes
    other = tmp_path / "other.png"
    other.write_bytes(bytes(data))
    context = CountingContext()
    with pytest.raises(InputError) as raised:
        _run_manifest_on_taskdev(tmp_path, context, {n: (other if n == changed else engine_data / n) for n in names},
                                 _runner_manifest(engine_data, names, "run-8"))
    assert f"1 of the {len(names)} files" in str(raised.value)
    assert f"1 in the data lake with other bytes than the manifest's sha256: {changed}" in str(raised.value)
    assert context.labels == {} and not _written(context)
    assert all(n == 1 for n in context.reads.values())


def test_once_a_file_is_missing_the_rest_are_read_once_to_be_named_and_nothing_is_labelled(
        tmp_path: Path, engine_data: Path, engine_truth: dict) -> None:
    names, _ = _pick(engine_truth)
    first, *rest = sorted(names)
    changed = rest[-1]
    other = tmp_path / "other.png"
    other.write_bytes((engine_data / changed).read_bytes() + b"\0")
    context = CountingContext(gone=frozenset({f"lab/run-8/{first}"}))
    with pytest.raises(InputError) as raised:
        _run_manifest_on_taskdev(tmp_path, context, {n: (other if n == changed else engine_data / n) for n in names},
                                 _runner_manifest(engine_data, names, "run-8"))
    message = str(raised.value)
    assert f"2 of the {len(names)} files" in message and f"1 not in the data lake (yet): {first}" in message
    assert f"1 in the data lake with other bytes than the manifest's sha256: {changed}" in message
    assert context.reads == {f"lab/run-8/{n}": 1 for n in [*names, "dedup-manifest.json"]}
    assert context.labels == {} and not _written(context)


@pytest.mark.parametrize("pointer", [
    {"fileKey": "run/a.png"},
    {"type": "s3file", "bucket": "b", "fileKey": "run/a.png", "fileId": "id-1", "version": "v2"},
    {"type": "localfile", "bucket": None, "fileKey": "run/a.png", "fileId": None, "version": None},
    {"fileKey": "run/a.png", "bucket": "b", "customer": {"name": "x", "note": None}, "tag": None},  # extras
])
def test_a_file_pointer_is_passed_on_as_model_dump_gives_it(pointer: dict) -> None:
    from dedup_engine.models import ManifestFile

    entry = ManifestFile.model_validate({"path": "a.png", "file": pointer})
    assert load_main()._pointer(entry) == entry.file.model_dump(exclude_none=True)
