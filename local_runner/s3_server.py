"""A local S3 for the demo, the tests and the reliability scripts: moto's server on 127.0.0.1, over real HTTP.

    with LocalS3(bucket="drop-zone") as s3:
        s3.endpoint_url     # http://127.0.0.1:<free port>
        s3.client()         # a boto3 client for it

Credentials for a local server are dummies; they are set in the environment only when none are configured, so
that the standard credential chain of the runner finds them.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1"}


def use_dummy_credentials() -> None:
    """For a local server only: dummy credentials unless the environment already names some."""
    if not os.environ.get("AWS_ACCESS_KEY_ID") and not os.environ.get("AWS_PROFILE"):
        for name, value in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


class LocalS3:
    def __init__(self, bucket: str | None = "drop-zone", *, port: int = 0) -> None:
        self.bucket = bucket
        self.port = port
        self._server: Any = None

    def __enter__(self) -> LocalS3:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        use_dummy_credentials()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per request
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        if self.bucket:
            self.client().create_bucket(Bucket=self.bucket)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()
            self._server = None

    @property
    def endpoint_url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
        )

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Every object under ``prefix``: key -> {"size", "sha256" (of the stored bytes), "metadata"}."""
        import hashlib

        client = self.client()
        found: dict[str, dict[str, Any]] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                body = client.get_object(Bucket=self.bucket, Key=obj["Key"])
                data = body["Body"].read()
                found[obj["Key"]] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                     "metadata": body.get("Metadata", {})}
        return found
