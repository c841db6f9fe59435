"""TetraScience task script: deduplicate the images of one run folder.

Input: ``{"files": [File, ...]}`` (file pointers of one run) or ``{"manifest": File}`` (a FolderManifest JSON in the
data lake), plus optional overrides of the pipeline config: method, hash_algorithm, hash_size, max_distance,
max_mse, max_residual, keep; and of the data-lake I/O: read_concurrency, label_concurrency, max_mb_in_flight,
lake_prefix (see lake_io/). Output: the DedupResult JSON written as PROCESSED, a ``dedup-status`` label (and
``dedup-duplicate-of`` where it applies) on every input file, applied while the run is decided, and a summary as
the return value (counts, how many files were labelled, and every label that could not be applied).
"""

from __future__ import annotations

import contextlib
import functools
import posixpath
import re
import typing as t

if t.TYPE_CHECKING:
    import ts_sdk.task as ts

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dedup_engine import DedupParams, DedupResult, FileOutcome, FilePointer, FolderManifest
from dedup_engine import dedup as run_engine
from dedup_engine.errors import InputError
from dedup_engine.grouping import natural_key
from dedup_engine.models import HashAlgorithm, KeepRule, ManifestFile
from lake_io import IoSettings, Labeller, ManifestCheck, Prefetcher, Read, locate, read_file
from lake_io.trigger import lake_base, needs_check

OVERRIDES = ("method", "hash_algorithm", "hash_size", "max_distance", "max_mse", "max_residual", "max_shift_px",
             "keep", "max_pixels")
IO_SETTINGS = ("read_concurrency", "label_concurrency", "max_mb_in_flight")
UNSET_IF_BLANK = (*OVERRIDES, *IO_SETTINGS, "lake_prefix")
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
    read_concurrency: int | None = Field(default=None, ge=1)
    label_concurrency: int | None = Field(default=None, ge=1)
    max_mb_in_flight: int | None = Field(default=None, ge=1)
    lake_prefix: str | None = Field(default=None, description="where a manifest's files are: '<prefix>/<path>'")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_unset(cls, data: t.Any) -> t.Any:
        # a pipeline config entry left empty arrives as "" (config values are strings on the platform)
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (k in UNSET_IF_BLANK and v in ("", None))}
        return data


def dedup(input: dict, context: "ts.Context") -> dict:  # noqa: A002 - the platform's parameter name
    try:
        request = TaskInput.model_validate(input)
        config = getattr(context, "pipeline_config", None) or {}
        params = DedupParams(**_chosen(request, config, OVERRIDES))
        settings = IoSettings.from_values(_chosen(request, config, IO_SETTINGS))
        if (request.files is None) == (request.manifest is None):
            raise InputError("give exactly one of 'files' (file pointers of one run) or 'manifest' (a manifest file)")
        manifest, where = _manifest(request, context, settings)
        result, labelled, failed = _run(context, manifest, params, settings, where)
    except (ValidationError, InputError, ValueError) as exc:
        return _fatal(context, f"unusable input: {_explain(exc)}")
    except RunNotReady as exc:
        return _fatal(context, str(exc))
    keep_result = getattr(context, "keep_result", None)  # a host in this process (the local runner) takes the
    if keep_result is not None:  # result as it is, instead of parsing back the JSON below (1 s at 40,000 files);
        keep_result(result)  # before it is serialised: what the host sets on it (where each file goes) is written too
    written = context.write_file(
        content=result.model_dump_json(indent=2),
        file_name=f"{_safe(manifest.run)}-dedup-result.json",
        file_category="PROCESSED",
    )
    return {"run": result.run, "counts": result.counts.model_dump(), "result": written, "labelled": labelled,
            "label_failures": failed}


class RunNotReady(Exception):
    """The manifest's files are not all in the data lake with its bytes: fatal, nothing labelled or written."""


def _run(context: t.Any, manifest: FolderManifest, params: DedupParams, settings: IoSettings,
         where: str) -> tuple[DedupResult, int, dict[str, str]]:
    """Decides the run while its files are read (once each) and its labels applied, all bounded and retried. With a
    manifest that gives sha256s, the labels are held back until every listed file has been checked."""
    read = functools.partial(read_file, context, settings=settings)
    listed = needs_check(manifest)
    check = ManifestCheck(listed, where) if listed else None
    pointers: dict[str, dict[str, t.Any]] = {}  # as read: with the version and file id the lake gave
    with contextlib.ExitStack() as stack:
        labeller = stack.enter_context(Labeller(context, settings, held=check is not None))
        prefetcher = stack.enter_context(Prefetcher(read, settings))

        labels_wanted = getattr(context, "applies_labels", True)  # files on a disk have none: the result is the record

        def label(outcome: FileOutcome) -> None:
            pointer = pointers[outcome.path]
            # the outcome's pointer, set as it comes (the engine streams them while the workers fingerprint), where
            # setting it on every outcome after the run cost the one busy core 0.07 s at 40,000 files
            outcome.file_key, outcome.file_id = pointer["fileKey"], pointer.get("fileId")
            if check is not None:
                check.outcome(outcome)
            if labels_wanted:
                labeller.submit(outcome.path, pointer, _labels(outcome))

        byte_source = getattr(context, "byte_source", None)
        if byte_source is not None:  # the local runner: picklable readers, so worker processes read the files
            pointers.update({e.path: _pointer(e) for e in manifest.files})
            # made as the engine takes them, in its keep order: a reader per file up front kept the other core idle
            # (0.1 s at 5,000 files, 0.9 s at 40,000)
            sources: t.Iterable[tuple[str, t.Any]] = (
                (path, byte_source(pointers[path])) for path in sorted(pointers, key=natural_key))
            prior = [(e.path, byte_source(_pointer(e))) for e in manifest.kept]
        else:
            sources = _feed(prefetcher, _in_order(manifest.files), pointers, check)
            prior = [(r.path, r.data) for r in _checked_whole(prefetcher.stream(_in_order(manifest.kept)), check)
                     if r.data is not None]
        result = run_engine(
            manifest.run,
            sources,
            params,
            workers=getattr(context, "workers", None),
            progress=getattr(context, "progress", None),
            previews=getattr(context, "previews", None),
            prior=prior,
            total=len(manifest.files),
            on_outcome=label,
            ordered=True,  # both kinds of sources come in natural path order
        )
        if check is not None and (message := check.message()):
            labeller.abandon()
            raise RunNotReady(message)
        labelled, failed = labeller.finish()
    # Each label error, set on the engine's own outcome (a copy of each cost 0.3 s at 40,000 files, at the end of the
    # run, where one core waits); the pointers were set as the outcomes came.
    if failed:
        for outcome in result.files:
            if outcome.path in failed:
                outcome.label_error = failed[outcome.path]
    return result, labelled, failed


def _feed(prefetcher: Prefetcher, items: list[tuple[str, dict[str, t.Any], int | None]],
          pointers: dict[str, dict[str, t.Any]], check: ManifestCheck | None) -> t.Iterator[tuple[str, t.Any]]:
    """The reads, in order, for the engine. Once the check has failed, deciding is of no use (nothing will be
    labelled): the remaining files are read only to be checked, so that the one message names them all."""
    reads = prefetcher.stream(items)
    for read in reads:
        pointers[read.path] = read.pointer
        if check is not None:
            check.read(read)
            if check.failed:
                for _ in _checked_whole(reads, check):
                    pass
                return
        yield read.path, read.source


def _checked_whole(reads: t.Iterable[Read], check: ManifestCheck | None) -> t.Iterator[Read]:
    for read in reads:
        if check is not None:
            check.bytes_read(read)
        yield read


def _in_order(entries: list[ManifestFile]) -> list[tuple[str, dict[str, t.Any], int | None]]:
    """In the engine's keep-first order (natural sort of the path), which the prefetcher reads ahead in."""
    ordered = sorted(entries, key=lambda e: natural_key(e.path))
    return [(e.path, _pointer(e), e.size_bytes) for e in ordered]


def _pointer(entry: ManifestFile) -> dict[str, t.Any]:
    pointer = entry.file
    assert pointer is not None, "locate() gives every entry a pointer"
    if not pointer.__pydantic_extra__:  # its plain fields as model_dump(exclude_none=True) gives them (40,000
        # pointers: 38 -> 25 ms before the engine starts)
        return {name: value for name, value in pointer.__dict__.items() if value is not None}
    return pointer.model_dump(exclude_none=True)


def _chosen(request: TaskInput, pipeline_config: t.Mapping[str, str], names: t.Iterable[str]) -> dict[str, t.Any]:
    """The pipeline config's values of ``names`` (blank means unset), the request's own values on top."""
    values: dict[str, t.Any] = {k: v for k, v in pipeline_config.items() if k in names and v not in (None, "")}
    values.update({k: v for k in names if (v := getattr(request, k)) is not None})
    return values


def _manifest(request: TaskInput, context: t.Any, settings: IoSettings) -> tuple[FolderManifest, str]:
    """The run's manifest with a pointer on every entry, and where its files are looked up (for messages)."""
    if request.manifest is not None:
        pointer = request.manifest.model_dump(exclude_none=True)
        read = read_file(context, "manifest", pointer, settings)
        if read.data is None:
            raise InputError(f"the manifest {request.manifest.fileKey} {read.failure}")
        try:
            manifest = FolderManifest.model_validate_json(read.data)
        except ValidationError as exc:
            raise InputError(f"the manifest {request.manifest.fileKey} is not a valid FolderManifest: "
                             f"{_explain(exc)}") from exc
        if request.run:
            manifest = manifest.model_copy(update={"run": request.run})
        if not manifest.files:
            raise InputError("the manifest lists no files")
        manifest = locate(manifest, pointer, request.lake_prefix)
        return manifest, lake_base(manifest.run, request.manifest.fileKey, request.lake_prefix) or "the bucket's root"
    assert request.files is not None
    keys = [p.fileKey for p in request.files]
    if len(set(keys)) != len(keys):
        raise InputError("the same file is listed twice")
    base = posixpath.commonpath([posixpath.dirname(k) or "." for k in keys]) if len(keys) > 1 else posixpath.dirname(keys[0])
    entries = [ManifestFile(path=posixpath.relpath(p.fileKey, base or "."), file=p) for p in request.files]
    run = request.run or posixpath.basename(base) or "run"
    return FolderManifest(run=run, files=entries), base


def _labels(outcome: FileOutcome) -> list[dict[str, str]]:
    labels = [{"name": "dedup-status", "value": outcome.status}]
    if outcome.duplicate_of:
        labels.append({"name": "dedup-duplicate-of", "value": _truncate(outcome.duplicate_of)})
    return labels


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
