"""Upload a run's unique files (and its result.json) to S3, as the File Log Agent would, for setups without one.

Keys are ``<prefix>/<run>/<path>``. Each object carries a SHA-256 checksum that S3 verifies on receipt
(``ChecksumSHA256``), and the file's sha256 and run in its metadata. An object already present with the same
sha256, size and checksum is skipped, so a rerun uploads nothing. Transient errors (HTTP 5xx, throttling, dropped
connections, timeouts) are retried by botocore's ``standard`` retry mode; files above the multipart threshold go
through s3transfer. A file that still fails is reported, never recorded as uploaded, and retried on the next pass.
Credentials come from the standard AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Sequence
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from dedup_engine.errors import InputError

log = logging.getLogger("local_runner.uploader")

MB = 1024 * 1024


@dataclass(frozen=True)
class UploadSettings:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 6
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    multipart_threshold: int = 64 * MB
    threads: int = 8

    @classmethod
    def from_url(cls, url: str, *, endpoint_url: str | None = None, **options: Any) -> UploadSettings:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise InputError(f"--upload-to {url!r} is not an S3 address: write it as s3://bucket/prefix")
        if endpoint_url is not None:
            endpoint = urlparse(endpoint_url)
            if endpoint.scheme not in ("http", "https") or not endpoint.netloc:
                raise InputError(f"--s3-endpoint-url {endpoint_url!r} is not an http(s) address")
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint_url=endpoint_url, **options)

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        return f"{where} at {self.endpoint_url}" if self.endpoint_url else where


@dataclass(frozen=True)
class UploadItem:
    path: Path  # where the file is now (unique/<run>/<path>)
    key_path: str  # its run-relative path, "/" separators
    sha256: str  # from the decision; the bytes are checked against it before they leave


@dataclass
class UploadReport:
    uploaded: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)


def make_client(settings: UploadSettings) -> Any:
    config = Config(
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=max(10, settings.threads),
        s3={"addressing_style": "path"} if settings.endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region,
                                          config=config)


class Uploader:
    def __init__(self, settings: UploadSettings, client: Any = None) -> None:
        self.settings = settings
        self.client = client or make_client(settings)
        self.transfer = TransferConfig(multipart_threshold=settings.multipart_threshold, use_threads=False)

    def describe(self) -> str:
        return self.settings.describe()

    def close(self) -> None:
        """Close the client's pooled connections."""
        self.client.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def key(self, run: str, key_path: str) -> str:
        parts = [p for p in (self.settings.prefix, *PurePosixPath(run).parts, *PurePosixPath(key_path).parts) if p]
        return "/".join(parts)

    # --- public ------------------------------------------------------------------------------------------------

    def upload_run(self, run: str, items: Sequence[UploadItem]) -> UploadReport:
        report = UploadReport()
        if not items:
            return report
        present = self._present(run)
        with ThreadPoolExecutor(max_workers=self.settings.threads) as pool:
            outcomes = list(pool.map(lambda item: self._one(run, item, present), items))
        for item, outcome in zip(items, outcomes):
            if outcome == "uploaded":
                report.uploaded += 1
            elif outcome == "skipped":
                report.skipped += 1
            else:
                report.failed.append(f"{item.key_path}: {outcome}")
                log.warning("run %s: upload of %s failed: %s", run, item.key_path, outcome)
        log.info("run %s: %d uploaded, %d already there, %d failed (%s)", run, report.uploaded, report.skipped,
                 len(report.failed), self.describe())
        return report

    def upload_result(self, run: str, path: Path, key_path: str = ".dedup/result.json") -> None:
        """The run's result beside its files, as ``<prefix>/<run>/<key_path>`` (always replaced): its records'
        result.json as ``.dedup/result.json``, and the copy left for the agent (``--result-to-agent``) by its name."""
        data = path.read_bytes()
        digest = hashlib.sha256(data)
        try:
            self.client.put_object(
                Bucket=self.settings.bucket, Key=self.key(run, key_path), Body=data,
                ChecksumSHA256=base64.b64encode(digest.digest()).decode(), ContentType="application/json",
                Metadata={"sha256": digest.hexdigest(), "run": run},
            )
        except (BotoCoreError, ClientError) as exc:
            log.warning("run %s: %s not uploaded (%s); it is uploaded with the next pass", run, key_path, exc)

    # --- one file ----------------------------------------------------------------------------------------------

    def _present(self, run: str) -> dict[str, int] | None:
        """Keys already under the run's prefix, with sizes (one listing instead of one request per file)."""
        prefix = self.key(run, "") + "/"
        found: dict[str, int] = {}
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.bucket,
                                                                              Prefix=prefix):
                for obj in page.get("Contents", []):
                    found[obj["Key"]] = obj["Size"]
        except (BotoCoreError, ClientError) as exc:
            log.warning("run %s: cannot list %s (%s): checking each file instead", run, prefix, exc)
            return None
        return found

    def _one(self, run: str, item: UploadItem, present: dict[str, int] | None) -> str:
        key = self.key(run, item.key_path)
        try:
            size = item.path.stat().st_size
            if self._already_there(key, item, size, present):
                return "skipped"
            if size >= self.settings.multipart_threshold:
                self._upload_large(run, key, item)
            else:
                self._upload_small(run, key, item)
            return "uploaded"
        except (BotoCoreError, ClientError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _already_there(self, key: str, item: UploadItem, size: int, present: dict[str, int] | None) -> bool:
        if present is not None and present.get(key) != size:
            return False  # not listed (or another size): no need to ask
        try:
            head = self.client.head_object(Bucket=self.settings.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        same_sha = head.get("Metadata", {}).get("sha256") == item.sha256
        checksum = head.get("ChecksumSHA256")
        composite = head.get("ChecksumType") == "COMPOSITE" or "-" in str(head.get("ETag", "")) or "-" in str(checksum)
        same_checksum = checksum is None or composite or checksum == _b64(item.sha256)  # multipart: per-part sums
        return same_sha and same_checksum and head.get("ContentLength") == size

    def _upload_small(self, run: str, key: str, item: UploadItem) -> None:
        data = item.path.read_bytes()
        digest = hashlib.sha256(data)
        if digest.hexdigest() != item.sha256:
            raise ValueError(f"{item.path} no longer has the bytes that were examined; not uploaded")
        response = self.client.put_object(
            Bucket=self.settings.bucket, Key=key, Body=data, ChecksumAlgorithm="SHA256",
            ChecksumSHA256=base64.b64encode(digest.digest()).decode(),
            Metadata={"sha256": item.sha256, "run": run},
        )
        etag = str(response.get("ETag", "")).strip('"')
        if etag and "-" not in etag and etag != hashlib.md5(data, usedforsecurity=False).hexdigest():
            raise ValueError(f"the store's ETag {etag} does not match the bytes sent for {item.key_path}")

    def _upload_large(self, run: str, key: str, item: UploadItem) -> None:
        from .mover import file_sha256

        if file_sha256(item.path) != item.sha256:
            raise ValueError(f"{item.path} no longer has the bytes that were examined; not uploaded")
        self.client.upload_file(
            str(item.path), self.settings.bucket, key, Config=self.transfer,
            ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": item.sha256, "run": run}},
        )


def _b64(sha256_hex: str) -> str:
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()
