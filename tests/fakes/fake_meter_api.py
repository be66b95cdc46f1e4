"""A local stand-in for a utility's meter API and a FIWARE Orion broker, for the sources' tests.

A threaded ``http.server`` on 127.0.0.1 (port 0), serving from in-memory lists:

- ``GET /readings`` and ``GET /events`` with ``since``, ``page``, ``page_size``: the records with
  a timestamp after ``since``, oldest first, as ``{"readings"|"events": [...], "next_page": n}``.
- ``GET /v2/entities`` with ``type``, ``options=keyValues``, ``limit``, ``offset``: the entities
  of that type under the ``Fiware-Service`` header's tenant (``fake.service``), as a list.

Every request needs ``Authorization: Bearer <fake.token>`` (else 401). Knobs: ``fail_next`` (the
next requests answer HTTP 500, or another status), ``hang_next`` (no answer until released or
stopped, so the client times out), ``malformed_next`` (a body that is not JSON), ``replace_next``
(a given JSON body instead). ``requests`` logs each one (path, query, headers).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class FakeMeterApi:
    """Start with ``with FakeMeterApi() as fake:``; point a source at ``fake.base_url``."""

    def __init__(self, token: str = "secret-token", service: str | None = "areawatch") -> None:
        self.token = token
        self.service = service
        self.readings: list[dict] = []
        self.events: list[dict] = []
        self.entities: list[dict] = []
        self.requests: list[LoggedRequest] = []
        self._plan: list[tuple[str, object]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                fake._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

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

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(LoggedRequest(parts.path, query, dict(handler.headers.items())))
            behaviour, argument = self._plan.pop(0) if self._plan else ("ok", None)
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self._reply(handler, 401, {"error": "Unauthorized"})
            return
        if behaviour == "hang":
            self._release.wait()
            return
        if behaviour == "fail":
            self._reply(handler, int(argument), {"error": "fake failure"})
            return
        if behaviour == "malformed":
            self._send(handler, 200, b"<html>502 Bad Gateway</html>{", "text/html")
            return
        if behaviour == "replace":
            self._reply(handler, 200, argument)
            return
        if parts.path in ("/readings", "/events"):
            self._page(handler, parts.path[1:], query)
        elif parts.path == "/v2/entities":
            self._entities(handler, query)
        else:
            self._reply(handler, 404, {"error": "NotFound"})

    def _page(self, handler: BaseHTTPRequestHandler, key: str, query: dict[str, str]) -> None:
        records = self.readings if key == "readings" else self.events
        since = _time(query["since"]) if "since" in query else None
        chosen = sorted(
            (r for r in records if since is None or _time(r["timestamp"]) > since),
            key=lambda r: _time(r["timestamp"]),
        )
        page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
        start = (page - 1) * size
        next_page = page + 1 if start + size < len(chosen) else None
        self._reply(handler, 200, {key: chosen[start : start + size], "next_page": next_page})

    def _entities(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if self.service is not None and handler.headers.get("Fiware-Service") != self.service:
            self._reply(handler, 200, [])  # another tenant: Orion shows it nothing
            return
        if query.get("options") != "keyValues":
            self._reply(handler, 400, {"error": "BadRequest"})
            return
        chosen = [e for e in self.entities if e.get("type") == query.get("type")]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
        self._reply(handler, 200, chosen[offset : offset + limit])

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: object) -> None:
        self._send(handler, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, data: bytes, kind: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> FakeMeterApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
