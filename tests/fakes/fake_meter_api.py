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

from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import PlannedFaultsServer


@dataclass(frozen=True)
class LoggedRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)


class FakeMeterApi(PlannedFaultsServer):
    """Start with ``with FakeMeterApi() as fake:``; point a source at ``fake.base_url``."""

    def __init__(self, token: str = "secret-token", service: str | None = "areawatch") -> None:
        super().__init__()
        self.token = token
        self.service = service
        self.readings: list[dict] = []
        self.events: list[dict] = []
        self.entities: list[dict] = []
        self.requests: list[LoggedRequest] = []

    def do_get(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(LoggedRequest(parts.path, query, dict(handler.headers.items())))
            behaviour, argument = self.next_behaviour()
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_json(handler, 401, {"error": "Unauthorized"})
            return
        if behaviour == "hang":
            self.hang()
            return
        if behaviour == "fail":
            self.send_json(handler, int(argument), {"error": "fake failure"})
            return
        if behaviour == "malformed":
            self.send(handler, 200, b"<html>502 Bad Gateway</html>{", "text/html")
            return
        if behaviour == "replace":
            self.send_json(handler, 200, argument)
            return
        if parts.path in ("/readings", "/events"):
            self._page(handler, parts.path[1:], query)
        elif parts.path == "/v2/entities":
            self._entities(handler, query)
        else:
            self.send_json(handler, 404, {"error": "NotFound"})

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
        self.send_json(handler, 200, {key: chosen[start : start + size], "next_page": next_page})

    def _entities(self, handler: BaseHTTPRequestHandler, query: dict[str, str]) -> None:
        if self.service is not None and handler.headers.get("Fiware-Service") != self.service:
            self.send_json(handler, 200, [])  # another tenant: Orion shows it nothing
            return
        if query.get("options") != "keyValues":
            self.send_json(handler, 400, {"error": "BadRequest"})
            return
        chosen = [e for e in self.entities if e.get("type") == query.get("type")]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 20))
        self.send_json(handler, 200, chosen[offset : offset + limit])


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)
