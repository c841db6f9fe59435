"""TetraScience task script: deduplicate the images of one run folder.

Input: ``{"files": [File, ...]}`` (file pointers of one run) or ``{"manifest": File}`` (a FolderManifest JSON in the
data lake), plus optional overrides of the pipeline config: method, hash_algorithm, hash_size, max_distance,
max_mse, max_residual, keep. Output: the DedupResult JSON written as PROCESSED, a ``dedup-status`` label (and
``dedup-duplicate-of`` where it applies) on every input file, and a short summary as the return value.
"""

from __future__ import annotations

import inspect
import posixpath
import re
import typing as t

if t.TYPE_CHECKING:
    import ts_sdk.task as ts

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dedup_engine import DedupParams, DedupResult, FilePointer, FolderManifest
from dedup_engine import dedup as run_engine
from dedup_engine.errors import InputError
from dedup_engine.models import HashAlgorithm, KeepRule, ManifestFile

OVERRIDES = ("method", "hash_algorithm", "hash_size", "max_distance", "max_mse", "max_residual", "max_shift_px",
             "keep", "max_pixels")
LABEL_VALUE_MAX = 256


class TaskInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[FilePointer] | None = Field(default=None, min_length=1)
    manifest: FilePointer | None = None
    run: str | None = Field(default=None, min_length=1)
    method: t.Literal["hash", "mse", "opencv"] | None = None
    hash_algorithm: HashAlgorithm | None = None
    hash_size: int | None = None
    max_distance: int | None = None
    max_mse: float | None = None
    max_residual: float | None = None
    max_shift_px: int | None = None
    keep: KeepRule | None = None
    max_pixels: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: t.Any) -> t.Any:
        # a pipeline config entry left empty arrives as "" (config values are strings on the platform)
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k in OVERRIDES and v in ("", None))}
        return data


def dedup(input: dict, context: "ts.Context") -> dict:  # noqa: A002 - the platform's parameter name
    try:
        request = TaskInput.model_validate(input)
        params = _params(request, getattr(context, "pipeline_config", None) or {})
        if (request.files is None) == (request.manifest is None):
            raise InputError("give exactly one of 'files' (file pointers of one run) or 'manifest' (a manifest file)")
        manifest = _manifest(request, context)
    except (ValidationError, InputError, ValueError) as exc:
        return _fatal(context, f"unusable input: {_explain(exc)}")
    pointers = {entry.path: entry.file for entry in manifest.files}
    result = run_engine(
        manifest.run,
        _sources(context, manifest.files),
        params,
        workers=getattr(context, "workers", None),
        progress=getattr(context, "progress", None),
        previews=getattr(context, "previews", None),
        prior=[_source(context, entry) for entry in manifest.kept],
        total=len(manifest.files),
    )
    result = result.model_copy(update={"files": [
        o.model_copy(update={"file_key": pointers[o.path].fileKey, "file_id": pointers[o.path].fileId})
        for o in result.files
    ]})
    written = context.write_file(
        content=result.model_dump_json(indent=2),
        file_name=f"{_safe(manifest.run)}-dedup-result.json",
        file_category="PROCESSED",
    )
    _label(context, result, pointers)
    return {"run": result.run, "counts": result.counts.model_dump(), "result": written}


def _params(request: TaskInput, pipeline_config: t.Mapping[str, str]) -> DedupParams:
    values: dict[str, t.Any] = {k: v for k, v in pipeline_config.items() if k in OVERRIDES and v not in (None, "")}
    values.update({k: v for k in OVERRIDES if (v := getattr(request, k)) is not None})
    return DedupParams(**values)


def _manifest(request: TaskInput, context: t.Any) -> FolderManifest:
    if request.manifest is not None:
        body = context.read_file(request.manifest.model_dump(exclude_none=True), form="body")["body"]
        try:
            manifest = FolderManifest.model_validate_json(body)
        except ValidationError as exc:
            raise InputError(f"the manifest {request.manifest.fileKey} is not a valid FolderManifest: "
                             f"{_explain(exc)}") from exc
        if request.run:
            manifest = manifest.model_copy(update={"run": request.run})
        for entry in [*manifest.files, *manifest.kept]:
            if entry.file is None:
                raise InputError(f"manifest entry {entry.path!r} has no data-lake file pointer ('file')")
        if not manifest.files:
            raise InputError("the manifest lists no files")
        return manifest
    assert request.files is not None
    keys = [p.fileKey for p in request.files]
    if len(set(keys)) != len(keys):
        raise InputError("the same file is listed twice")
    base = posixpath.commonpath([posixpath.dirname(k) or "." for k in keys]) if len(keys) > 1 else posixpath.dirname(keys[0])
    entries = [ManifestFile(path=posixpath.relpath(p.fileKey, base or "."), file=p) for p in request.files]
    run = request.run or posixpath.basename(base) or "run"
    return FolderManifest(run=run, files=entries)


def _sources(context: t.Any, entries: list[ManifestFile]) -> t.Iterable[tuple[str, t.Any]]:
    """A list when the context gives lazy readers (the engine then decides while it fingerprints); otherwise a
    generator, so that the bytes of a 40,000-file run are read one chunk at a time."""
    if getattr(context, "byte_source", None) is not None:
        return [_source(context, entry) for entry in entries]
    return (_source(context, entry) for entry in entries)


def _source(context: t.Any, entry: ManifestFile) -> tuple[str, t.Any]:
    pointer = entry.file.model_dump(exclude_none=True)  # type: ignore[union-attr]
    reader = getattr(context, "byte_source", None)
    if reader is not None:  # the local runner: a picklable reader, so worker processes read the file themselves
        return entry.path, reader(pointer)
    return entry.path, context.read_file(pointer, form="body")["body"]


def _label(context: t.Any, result: DedupResult, pointers: dict[str, FilePointer | None]) -> None:
    accepts_no_propagate = "no_propagate" in inspect.signature(context.add_labels).parameters
    for outcome in result.files:
        pointer = pointers[outcome.path]
        status = "duplicate" if outcome.status == "duplicate" else outcome.status
        labels = [{"name": "dedup-status", "value": status}]
        if outcome.duplicate_of:
            labels.append({"name": "dedup-duplicate-of", "value": _truncate(outcome.duplicate_of)})
        kwargs = {"no_propagate": True} if accepts_no_propagate else {}  # labels must not re-trigger pipelines
        context.add_labels(pointer.model_dump(exclude_none=True), labels, **kwargs)  # type: ignore[union-attr]


def _truncate(value: str) -> str:
    return value if len(value) <= LABEL_VALUE_MAX else "..." + value[-(LABEL_VALUE_MAX - 3):]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"


def _explain(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        return f"{where}: {first['msg']} ({exc.error_count()} problem(s))"
    return str(exc)


def _fatal(context: t.Any, message: str) -> t.NoReturn:
    raise_fatal = getattr(context, "raise_fatal_error", None)
    if raise_fatal is not None:
        raise_fatal(message)
    raise InputError(message)
