"""Uploads against a real moto server over HTTP, with and without injected faults in between."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path

import pytest

from dedup_engine.errors import InputError
from local_runner.uploader import UploadItem, Uploader, UploadSettings

from fault_proxy import FaultProxy, first_attempt_fails


def _items(folder: Path, n: int, *, size: int = 3000) -> list[UploadItem]:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i in range(n):
        data = hashlib.sha256(str(i).encode()).digest() * (size // 32)
        path = folder / f"sub dir/img é {i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        items.append(UploadItem(path, f"sub dir/img é {i:03d}.png", hashlib.sha256(data).hexdigest()))
    return items


def _uploader(endpoint: str, bucket: str, **options) -> Uploader:
    return Uploader(UploadSettings.from_url(f"s3://{bucket}/lab/cytpix", endpoint_url=endpoint, **options))


def test_settings_from_url() -> None:
    s = UploadSettings.from_url("s3://my-bucket/a/b/", endpoint_url="http://127.0.0.1:9000")
    assert (s.bucket, s.prefix, s.endpoint_url) == ("my-bucket", "a/b", "http://127.0.0.1:9000")
    assert UploadSettings.from_url("s3://b").prefix == ""
    for bad in ("my-bucket/prefix", "https://b/p", "s3:///p"):
        with pytest.raises(InputError, match="s3://bucket/prefix"):
            UploadSettings.from_url(bad)
    with pytest.raises(InputError, match="http"):
        UploadSettings.from_url("s3://b/p", endpoint_url="127.0.0.1:9000")


def test_uploads_with_checksum_and_metadata_then_skips(tmp_path: Path, moto_server, bucket: str) -> None:
    items = _items(tmp_path, 12)
    uploader = _uploader(moto_server.endpoint_url, bucket)
    report = uploader.upload_run("ProjA/run-7", items)
    assert (report.uploaded, report.skipped, report.failed) == (12, 0, [])
    stored = moto_server.objects("lab/cytpix/")
    assert set(stored) == {f"lab/cytpix/ProjA/run-7/{i.key_path}" for i in items}
    client = moto_server.client()
    for item in items:
        key = f"lab/cytpix/ProjA/run-7/{item.key_path}"
        assert stored[key]["sha256"] == item.sha256
        assert stored[key]["metadata"] == {"sha256": item.sha256, "run": "ProjA/run-7"}
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == base64.b64encode(bytes.fromhex(item.sha256)).decode()
    again = uploader.upload_run("ProjA/run-7", items)
    assert (again.uploaded, again.skipped, again.failed) == (0, 12, [])


def test_a_different_object_under_the_key_is_replaced(tmp_path: Path, moto_server, bucket: str) -> None:
    items = _items(tmp_path, 2)
    client = moto_server.client()
    client.put_object(Bucket=bucket, Key=f"lab/cytpix/r/{items[0].key_path}", Body=b"x" * 3000,
                      Metadata={"sha256": "0" * 64})
    report = _uploader(moto_server.endpoint_url, bucket).upload_run("r", items)
    assert (report.uploaded, report.skipped) == (2, 0)
    assert moto_server.objects("lab/cytpix/r/")[f"lab/cytpix/r/{items[0].key_path}"]["sha256"] == items[0].sha256


def test_a_file_changed_since_the_decision_is_not_uploaded(tmp_path: Path, moto_server, bucket: str) -> None:
    items = _items(tmp_path, 3)
    items[1].path.write_bytes(b"changed after the decision")
    report = _uploader(moto_server.endpoint_url, bucket).upload_run("r", items)
    assert report.uploaded == 2 and len(report.failed) == 1 and "no longer has the bytes" in report.failed[0]
    assert f"lab/cytpix/r/{items[1].key_path}" not in moto_server.objects("lab/cytpix/")


def test_large_files_go_through_multipart_with_checksums(tmp_path: Path, moto_server, bucket: str) -> None:
    items = _items(tmp_path, 2, size=6 * 1024 * 1024)
    uploader = _uploader(moto_server.endpoint_url, bucket, multipart_threshold=5 * 1024 * 1024)
    assert uploader.upload_run("big", items).uploaded == 2
    stored = moto_server.objects("lab/cytpix/big/")
    assert sorted(v["sha256"] for v in stored.values()) == sorted(i.sha256 for i in items)
    assert uploader.upload_run("big", items).skipped == 2


@pytest.mark.parametrize("fault", ["500", "503", "drop", "slow"])
def test_transient_faults_are_retried(tmp_path: Path, moto_server, bucket: str, fault: str) -> None:
    items = _items(tmp_path, 6)
    with FaultProxy(moto_server.endpoint_url, first_attempt_fails(fault), slow_seconds=2.5) as proxy:
        uploader = _uploader(proxy.url, bucket, read_timeout=1.0, connect_timeout=2.0)
        report = uploader.upload_run("r", items)
    assert report.failed == [] and report.uploaded == 6
    assert proxy.actions[fault] == 6  # every file met the fault once
    stored = moto_server.objects("lab/cytpix/r/")
    assert {v["sha256"] for v in stored.values()} == {i.sha256 for i in items}


def test_a_persistent_failure_is_reported_and_leaves_no_object(tmp_path: Path, moto_server, bucket: str) -> None:
    items = _items(tmp_path, 4)
    doomed = items[2].key_path.replace(" ", "%20")

    def plan(number: int, method: str, path: str) -> str:
        return "drop" if method == "PUT" and path.split("?")[0].endswith(doomed.split("/")[-1].replace("é", "%C3%A9")) else "pass"

    with FaultProxy(moto_server.endpoint_url, plan) as proxy:
        report = _uploader(proxy.url, bucket, max_attempts=3).upload_run("r", items)
    assert report.uploaded == 3 and len(report.failed) == 1 and items[2].key_path in report.failed[0]
    assert proxy.actions["drop"] >= 3  # botocore tried three times (urllib3 may resend once on a pooled connection)
    stored = moto_server.objects("lab/cytpix/r/")
    assert f"lab/cytpix/r/{items[2].key_path}" not in stored  # no partial object
    assert len(stored) == 3
