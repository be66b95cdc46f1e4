"""What every fake HTTP service in the tests shares: a threaded server on a free localhost port,
started and stopped with ``with``, and a plan of faults for the next requests.

A fake subclasses ``LocalHttpServer`` and answers in ``do_get`` / ``do_post``; one that offers the
usual faults subclasses ``PlannedFaultsServer`` and asks ``next_behaviour()`` per request.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalHttpServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Set when the server stops: a request told to hang is released then.
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output (and phone numbers) out of stderr

            def do_GET(self) -> None:  # noqa: N802
                fake.do_get(self)

            def do_POST(self) -> None:  # noqa: N802
                fake.do_post(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def do_get(self, handler: BaseHTTPRequestHandler) -> None:
        self.send(handler, 405, b"Method Not Allowed", "text/plain")

    def do_post(self, handler: BaseHTTPRequestHandler) -> None:
        self.send(handler, 405, b"Method Not Allowed", "text/plain")

    def hang(self) -> None:
        """Answer nothing until the server stops (a timeout for the client)."""
        self._release.wait()

    @staticmethod
    def send(handler: BaseHTTPRequestHandler, status: int, data: bytes, kind: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    @classmethod
    def send_json(cls, handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
        cls.send(handler, status, json.dumps(body).encode(), "application/json")

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


class PlannedFaultsServer(LocalHttpServer):
    """A server whose next requests can be told to fail, hang, be malformed or be replaced."""

    def __init__(self) -> None:
        super().__init__()
        self._plan: list[tuple[str, object]] = []

    def fail_next(self, times: int = 1, *, status: int = 500) -> None:
        with self._lock:
            self._plan.extend([("fail", status)] * times)

    def hang_next(self, times: int = 1) -> None:
        with self._lock:
            self._plan.extend([("hang", None)] * times)

    def malformed_next(self, times: int = 1) -> None:
        with self._lock:
            self._plan.extend([("malformed", None)] * times)

    def replace_next(self, body: object) -> None:
        """The next request is answered 200 with ``body`` whatever it asked."""
        with self._lock:
            self._plan.append(("replace", body))

    def next_behaviour(self) -> tuple[str, object]:
        """What this request gets: ``("ok", None)`` unless a fault was planned (hold the lock)."""
        return self._plan.pop(0) if self._plan else ("ok", None)
