"""A small HTTP proxy on 127.0.0.1 that injects storage faults between boto3 and a real moto server.

Each request is given to ``plan(number, method, path)``, which answers one of:
    "pass"   forward it unchanged
    "500" / "503"   answer that status with an S3-style XML error, without forwarding
    "drop"   read half of the request body, then close the connection without an answer
    "slow"   wait ``slow_seconds`` before forwarding (longer than the client's read timeout)
The proxy counts what it did, per action and per path.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlparse

Plan = Callable[[int, str, str], str]


class FaultProxy:
    def __init__(self, upstream: str, plan: Plan, *, slow_seconds: float = 2.0) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.plan = plan
        self.slow_seconds = slow_seconds
        self.actions: Counter[str] = Counter()
        self.by_path: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()
        self._count = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 2  # an idle keep-alive connection ends its thread soon after the client stops

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def _handle(self) -> None:
                with proxy._lock:
                    proxy._count += 1
                    number = proxy._count
                action = proxy.plan(number, self.command, self.path)
                with proxy._lock:
                    proxy.actions[action] += 1
                    proxy.by_path[(self.command, self.path.split("?")[0], action)] += 1
                length = int(self.headers.get("Content-Length") or 0)
                if action == "drop":
                    self.rfile.read(length // 2)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                body = self.rfile.read(length) if length else b""
                if action in ("500", "503"):
                    payload = (f"<Error><Code>{'InternalError' if action == '500' else 'SlowDown'}</Code>"
                               f"<Message>injected {action}</Message></Error>").encode()
                    self.send_response(int(action))
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == "slow":
                    time.sleep(proxy.slow_seconds)
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    try:
                        self.send_response(response.status, response.reason)
                        for key, value in response.getheaders():
                            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                                self.send_header(key, value)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        if self.command != "HEAD":
                            self.wfile.write(data)
                    except (BrokenPipeError, ConnectionResetError):
                        self.close_connection = True  # the client gave up (a timeout): nothing to answer
                finally:
                    connection.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a connection we dropped on purpose, or a client that gave up: not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


def first_attempt_fails(action: str, method: str = "PUT") -> Plan:
    """Every request of ``method`` for a given path fails with ``action`` the first time, then passes."""
    seen: set[str] = set()
    lock = threading.Lock()

    def plan(number: int, verb: str, path: str) -> str:
        if verb != method:
            return "pass"
        key = path.split("?")[0]
        with lock:
            if key in seen:
                return "pass"
            seen.add(key)
        return action

    return plan
