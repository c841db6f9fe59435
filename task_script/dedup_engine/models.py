"""The one contract between the engine, the task script and the local runner.

Every model forbids unknown fields, so a typo in a manifest or an override is an error, not a silent default.
Paths inside a run are relative to the run folder and always use ``/`` separators, whatever the host OS.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SCHEMA_VERSION = 1  # FolderManifest
RESULT_SCHEMA_VERSION = 2  # DedupResult: 2 added the statuses "skipped" and "restored" (and their counts)

Method = Literal["hash", "mse"]
HashAlgorithm = Literal["phash", "dhash", "ahash", "whash"]
KeepRule = Literal["first", "largest", "sharpest"]
Status = Literal["unique", "duplicate", "error", "passthrough", "skipped", "restored"]
Proof = Literal["identical_bytes", "identical_pixels", "near_duplicate"]

METHOD_ALIASES = {"opencv": "mse"}


PLAIN_PATH = re.compile(r"[^./\\\x00:][^/\\\x00:]*(?:/[^./\\\x00:][^/\\\x00:]*)*")
# every part non-empty and not starting with a dot (so neither "." nor ".."), no backslash, NUL or colon: such a
# path passes every check below and is its own normal form (one match instead of the checks: 0.4 s at 40,000)


def check_relative_path(path: str) -> str:
    """A run-relative path: no drive, no leading slash, no ``..``, ``/`` separators."""
    if PLAIN_PATH.fullmatch(path):
        return path
    if not path or "\x00" in path:
        raise ValueError("path is empty or contains a NUL byte")
    if "\\" in path:
        raise ValueError(f"path {path!r} must use '/' separators")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise ValueError(f"path {path!r} must be relative to the run folder")
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"path {path!r} must not contain empty, '.' or '..' parts")
    return posixpath.normpath(path)


RelativePath = Annotated[str, Field(min_length=1, max_length=4096)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilePointer(_Model):
    """A TetraScience data-lake file pointer, as the platform passes it to a task script."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str = "s3file"
    bucket: str | None = None
    fileKey: str = Field(min_length=1)
    fileId: str | None = None
    version: str | None = None


class ManifestFile(_Model):
    """One file of a run, as the watcher saw it once the run had settled."""

    path: RelativePath
    size_bytes: int | None = Field(default=None, ge=0)
    mtime_ns: int | None = None
    sha256: str | None = Field(default=None, pattern="^[0-9a-f]{64}$",
                               description="sha256 of the bytes; the task checks the data lake's copy against it")
    file: FilePointer | None = Field(default=None, description="data-lake pointer, on the platform")

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        return check_relative_path(value)


class FolderManifest(_Model):
    """The files of one run folder: what the engine is asked to deduplicate."""

    schema_version: Literal[1] = SCHEMA_VERSION
    run: str = Field(min_length=1, description="run name: the run folder's path relative to the watched folder")
    created_at: dt.datetime | None = None
    files: list[ManifestFile]
    kept: list[ManifestFile] = Field(
        default_factory=list,
        description="representatives kept by an earlier pass over this run: later files are compared with them; "
        "they are not decided again",
    )

    @model_validator(mode="after")
    def _unique_paths(self) -> FolderManifest:
        seen: set[str] = set()
        for entry in [*self.files, *self.kept]:
            if entry.path in seen:
                raise ValueError(f"path {entry.path!r} is listed twice in the manifest")
            seen.add(entry.path)
        return self


class DedupParams(_Model):
    """How to decide. Frozen: a run's parameters are recorded with its result and never change mid-run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Method = "hash"
    hash_algorithm: HashAlgorithm = "phash"
    hash_size: int = Field(default=8, ge=4, le=32, description="hash side; the hash has hash_size**2 bits")
    max_distance: int = Field(
        default=0,
        ge=0,
        description="hash method: above 0, the nearest perceptual hashes within this Hamming distance are candidates "
        "too, beside the nearest layout signatures (0, the default: signatures only; on every set measured the hash "
        "added no candidate the signatures had not found); candidates only propose, the pixel proof decides",
    )
    max_mse: float = Field(
        default=50.0,
        ge=0,
        description="mse method: largest mean squared error (8-bit grey levels squared, float) to a kept "
        "image of the same shape",
    )
    max_residual: float = Field(
        default=0.75,
        ge=0,
        description="pixel proof: largest RMS (8-bit grey levels) of the low-passed (Gaussian, sigma 1.5 px) "
        "difference between the candidate and the kept image after registration (shift or crop up to "
        "max_shift_px, or resize) and a gain/offset fit; noise and re-encoding average out, a different image does not",
    )
    max_shift_px: int = Field(default=4, ge=0, le=16, description="largest shift or crop searched by the proof")
    keep: KeepRule = "first"
    max_pixels: int = Field(
        default=64_000_000, ge=1, description="images with more pixels are refused before decoding (bombs)"
    )

    @model_validator(mode="before")
    @classmethod
    def _aliases(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("method") in METHOD_ALIASES:
            data = {**data, "method": METHOD_ALIASES[data["method"]]}
        return data


class FileOutcome(_Model):
    """What happened to one input file. Exactly one per input file."""

    path: RelativePath = Field(description="relative to the run folder, '/' separators")
    status: Status = Field(description="unique | duplicate | error | passthrough (decided by the engine); skipped "
                           "(not taken as input: link, temporary, system or hidden file; left in place, reason says "
                           "why) and restored (a duplicate brought back into the run folder) by the local runner")
    sha256: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = Field(default=None, description="decoded format, e.g. PNG, BMP (by content)")
    hash: str | None = Field(default=None, description="hex of the perceptual hash, as imagehash prints it")
    duplicate_of: str | None = Field(default=None, description="path of the kept representative, relative to the "
                                     "run folder (or, for one that left under a name a later file took, to W)")
    distance: float | None = Field(
        default=None, description="hash: Hamming distance between the two files' perceptual hashes (their `hash`); "
        "mse: mean squared error"
    )
    proof: Proof | None = None
    residual: float | None = Field(
        default=None, description="hash: aligned RMS residual of the pixel proof (for a unique image: of its proof "
        "against `nearest`, the closest kept candidate, which was above max_residual)")
    nearest: str | None = Field(
        default=None, description="unique images only: the kept image that came nearest to being its original "
        "(the candidate with the lowest proof residual), to show near misses to whoever tunes max_residual")
    reason: str | None = Field(default=None, description="why it was archived, kept or passed through")
    error: str | None = None
    destination: str | None = Field(default=None, description="where the file is (a dry run: would be), relative "
                                    "to the watched folder; null for a file left in place")
    file_key: str | None = Field(default=None, description="the input's file pointer key (locally: relative to the "
                                 "watched folder)")
    file_id: str | None = None
    label_error: str | None = Field(default=None, description="platform: the label that could not be applied, and why")


class Counts(_Model):
    total: int = 0
    unique: int = 0
    duplicate: int = 0
    error: int = 0
    passthrough: int = 0
    skipped: int = 0
    restored: int = 0


class DedupResult(_Model):
    """The run's decision: every file's outcome, with the parameters that produced it."""

    schema_version: Literal[2] = RESULT_SCHEMA_VERSION
    run: str
    method: Method
    params: DedupParams
    counts: Counts
    files: list[FileOutcome]
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    timings: dict[str, float] = Field(
        default_factory=dict,
        description="seconds: total_s = decide_s + other_s, decide_s = candidate_search_s + proof_s (other_s: "
        "fingerprinting, i.e. waiting for the workers, exact-copy lookups and bookkeeping); a run's result.json "
        "holds the sums over its passes")
    tool_version: str | None = None

    def by_path(self) -> dict[str, FileOutcome]:
        return {outcome.path: outcome for outcome in self.files}
