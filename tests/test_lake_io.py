from __future__ import annotations

import random
import threading
import time

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError
from requests.exceptions import ConnectionError as RequestsConnectionError

from lake_io import IoSettings, Labeller, Prefetcher, Read
from lake_io.retries import CallFailed, call_with_retries, is_missing, is_transient


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "GetObject")


@pytest.mark.parametrize(("error", "transient", "missing"), [
    (_client_error("SlowDown", 503), True, False),
    (_client_error("InternalError", 500), True, False),
    (_client_error("Whatever", 502), True, False),
    (_client_error("TooManyRequestsException", 429), True, False),
    (_client_error("NoSuchKey", 404), False, True),
    (_client_error("AccessDenied", 403), False, False),
    (ConnectionClosedError(endpoint_url="http://s3"), True, False),
    (EndpointConnectionError(endpoint_url="http://s3"), True, False),
    (RequestsConnectionError("connection reset"), True, False),
    (ConnectionResetError(104, "reset by peer"), True, False),
    (TimeoutError("timed out"), True, False),
    (Exception('{"message":"Too Many Requests"}'), True, False),  # ts-sdk's add_labels on a non-200 answer
    (KeyError("lab/x.png"), False, True),  # ts_sdk.taskdev's data lake
    (FileNotFoundError("label API: 404 after ts-sdk's own retries"), False, False),
    (ValueError("bad label"), False, False),
])
def test_which_failures_are_retried(error: Exception, transient: bool, missing: bool) -> None:
    assert is_transient(error) is transient
    assert is_missing(error) is missing


def test_retries_back_off_exponentially_with_jitter_then_give_up_naming_the_cause() -> None:
    slept: list[float] = []
    calls = []

    def throttled() -> bytes:
        calls.append(1)
        raise _client_error("SlowDown", 503)

    with pytest.raises(CallFailed) as failed:
        call_with_retries(throttled, "x.png could not be read", 5, 0.1, 0.3, sleep=slept.append, jitter=lambda: 1.0)
    assert len(calls) == 5 and slept == pytest.approx([0.1, 0.2, 0.3, 0.3])  # capped at max_delay_s
    assert "x.png could not be read" in str(failed.value) and "SlowDown" in str(failed.value)
    assert "after 5 attempts" in str(failed.value) and not failed.value.missing

    calls.clear()
    with pytest.raises(CallFailed) as failed:
        call_with_retries(lambda: calls.append(1) or (_ for _ in ()).throw(_client_error("NoSuchKey", 404)),
                          "y.png", 5, 0.1, 0.3, sleep=slept.append)
    assert len(calls) == 1 and failed.value.missing and "not retried" in str(failed.value)

    outcomes = iter([ConnectionResetError("reset"), b"data"])

    def flaky() -> bytes:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert call_with_retries(flaky, "z.png", 3, 0.0, 0.0) == b"data"


class SlowLake:
    """Reads that take a random few milliseconds, counting how many run at once."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def read(self, path: str, pointer: dict) -> Read:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(random.uniform(0.001, 0.01))
        with self.lock:
            self.running -= 1
        return Read(path, pointer, bytes(self.sizes[path]))


def test_prefetcher_hands_reads_over_in_order_concurrently_and_within_the_byte_budget() -> None:
    sizes = {f"img_{i:04d}.png": random.Random(i).randint(100_000, 900_000) for i in range(120)}
    lake = SlowLake(sizes)
    settings = IoSettings(read_concurrency=8, max_mb_in_flight=2)
    items = [(path, {"fileKey": path}, size) for path, size in sizes.items()]
    with Prefetcher(lake.read, settings) as prefetcher:
        reads = list(prefetcher.stream(items))
        peak = prefetcher.peak_bytes_reserved
    assert [r.path for r in reads] == list(sizes) and all(len(r.data) == sizes[r.path] for r in reads)
    assert 1 < lake.most <= 8
    assert peak <= 2 * 2**20
    assert not any(t.name.startswith("lake-read") for t in threading.enumerate())  # the block ended them


def test_prefetcher_always_reads_one_file_even_when_it_alone_is_over_the_budget() -> None:
    lake = SlowLake({"big.tif": 3 * 2**20})
    with Prefetcher(lake.read, IoSettings(max_mb_in_flight=1)) as prefetcher:
        (read,) = prefetcher.stream([("big.tif", {"fileKey": "big.tif"}, 3 * 2**20)])
    assert len(read.data) == 3 * 2**20


class LabelApi:
    def __init__(self) -> None:
        self.labelled: list[str] = []

    def add_labels(self, file: dict, labels: list[dict], no_propagate: bool = False) -> dict:
        assert no_propagate  # labels must not start pipelines again
        self.labelled.append(file["fileKey"])
        return {}


def test_held_labels_wait_for_release_and_an_abandoned_run_labels_nothing() -> None:
    api = LabelApi()
    with Labeller(api, IoSettings(label_concurrency=4), held=True) as labeller:
        for i in range(10):
            labeller.submit(f"{i}.png", {"fileKey": f"{i}.png"}, [{"name": "dedup-status", "value": "unique"}])
        time.sleep(0.05)  # not a timing assertion: gives the threads a chance to label too early, if they would
        assert api.labelled == []
        assert labeller.finish() == (10, {})
    assert sorted(api.labelled) == sorted(f"{i}.png" for i in range(10))

    api = LabelApi()
    with Labeller(api, IoSettings(label_concurrency=4), held=True) as labeller:
        labeller.submit("a.png", {"fileKey": "a.png"}, [{"name": "dedup-status", "value": "unique"}])
        labeller.abandon()
    assert api.labelled == []


@pytest.mark.parametrize(("values", "expected"), [
    ({}, IoSettings()),
    ({"read_concurrency": "8", "label_concurrency": "", "max_mb_in_flight": 64}, IoSettings(read_concurrency=8,
                                                                                             max_mb_in_flight=64)),
])
def test_settings_from_pipeline_config(values: dict, expected: IoSettings) -> None:
    assert IoSettings.from_values(values) == expected


@pytest.mark.parametrize("values", [{"read_concurrency": "many"}, {"read_concurrency": "0"}])
def test_bad_settings_are_refused_by_name(values: dict) -> None:
    with pytest.raises(ValueError, match="read_concurrency"):
        IoSettings.from_values(values)
