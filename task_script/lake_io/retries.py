"""Which failed platform calls are worth another try, and the loop that tries again.

Transient: S3 throttling (SlowDown, 503) and other 5xx or 429 answers, dropped or refused connections, timeouts, and
the bare ``Exception`` ts-sdk 2.8 raises with the response body when a label or search call gets a status other
than 200 or 404 (it does not keep the status, so a 400 is retried too: a few wasted calls, then reported).
Permanent: a missing object (NoSuchKey, 404), access denied, anything else. Backoff is exponential with full
jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"), so that 32 throttled threads do not come back
in step.
"""

from __future__ import annotations

import functools
import random
import time
from typing import Callable, TypeVar

@functools.lru_cache(maxsize=1)
def _network_errors() -> tuple[type[BaseException], ...]:
    """botocore's and requests' connection and timeout errors (both come with ts-sdk in the container; the task must
    still import without them). Imported at the first failure, not with the module: the local runner loads this
    module with every task and never calls the lake (the two imports cost its start 0.2 s)."""
    found: list[type[BaseException]] = []
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
        from botocore.exceptions import HTTPClientError

        found += [BotoConnectionError, HTTPClientError]
    except ImportError:  # pragma: no cover - exercised only outside the container's image
        pass
    try:
        from requests.exceptions import ConnectionError as RequestsConnectionError
        from requests.exceptions import Timeout

        found += [RequestsConnectionError, Timeout]
    except ImportError:  # pragma: no cover
        pass
    return tuple(found)


T = TypeVar("T")

TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
})
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "NotFound", "404"})


class CallFailed(Exception):
    """A platform call that failed for good: after its retries, or at once when retrying cannot help."""

    def __init__(self, what: str, cause: BaseException, attempts: int) -> None:
        tries = f"after {attempts} attempts" if attempts > 1 else "not retried"
        super().__init__(f"{what}: {describe(cause)} ({tries})")
        self.cause = cause
        self.attempts = attempts
        self.missing = is_missing(cause)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _client_error(exc: BaseException) -> tuple[str | None, int]:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore's ClientError
        return response.get("Error", {}).get("Code"), int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    status = getattr(response, "status_code", None)  # requests' HTTPError
    return None, status if isinstance(status, int) else 0


def is_missing(exc: BaseException) -> bool:
    """The object is not in the lake (yet): S3's NoSuchKey or 404, ts_sdk.testing's NoSuchKey, taskdev's KeyError."""
    code, status = _client_error(exc)
    return code in MISSING_CODES or status == 404 or type(exc).__name__ == "NoSuchKey" or isinstance(exc, KeyError)


def is_transient(exc: BaseException) -> bool:
    code, status = _client_error(exc)
    if code is not None or status:
        return code in TRANSIENT_CODES or status == 429 or status >= 500
    if isinstance(exc, (ConnectionError, TimeoutError, *_network_errors())):
        return True
    return type(exc) is Exception


def call_with_retries(
    call: Callable[[], T],
    what: str,
    attempts: int,
    first_delay_s: float,
    max_delay_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
) -> T:
    """``call()``, tried up to ``attempts`` times while it fails transiently; raises :class:`CallFailed`."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - classified below; whatever it is, it is reported, never lost
            if attempt == attempts or not is_transient(exc):
                raise CallFailed(what, exc, attempt) from exc
            sleep(jitter() * min(max_delay_s, first_delay_s * 2 ** (attempt - 1)))
    raise AssertionError("unreachable")  # pragma: no cover
