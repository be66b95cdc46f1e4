"""A local stand-in for Twilio's Messages API, for the SMS channel's tests.

A threaded ``http.server`` on 127.0.0.1 (port 0). It records each ``POST
/2010-04-01/Accounts/{sid}/Messages.json`` (To, From, Body, StatusCallback) and answers like
Twilio (201 with a JSON body carrying a ``sid``), unless told to fail the next requests: HTTP 500,
HTTP 400 with a Twilio error code (21211), or hang until the client times out.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")


@dataclass(frozen=True)
class ReceivedMessage:
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None


class FakeTwilio:
    """Start with ``with FakeTwilio() as fake:``; point the client at ``fake.base_url``."""

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.requests = 0
        self._plan: list[tuple[str, int | None, int | None]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._sids = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # keep test output (and numbers) out of stderr

            def do_POST(self) -> None:  # noqa: N802
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

    def fail_next(self, times: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """The next ``times`` requests answer ``status`` (with Twilio ``code`` when given)."""
        with self._lock:
            self._plan.extend([("fail", status, code)] * times)

    def hang_next(self, times: int = 1) -> None:
        """The next ``times`` requests get no answer until the server stops."""
        with self._lock:
            self._plan.extend([("hang", None, None)] * times)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        with self._lock:
            self.requests += 1
            behaviour = self._plan.pop(0) if self._plan else ("ok", None, None)
        match = _MESSAGES_PATH.match(handler.path)
        if match is None:
            self._reply(handler, 404, {"code": 20404, "message": "not found", "status": 404})
            return
        kind, status, code = behaviour
        if kind == "hang":
            self._release.wait()
            return
        if kind == "fail":
            body = {"code": code or status, "message": "fake failure", "status": status}
            self._reply(handler, status, body)
            return
        sid = f"SM{next(self._sids):032d}"
        with self._lock:
            self.messages.append(
                ReceivedMessage(
                    account_sid=match["sid"],
                    to=form.get("To", ""),
                    from_=form.get("From", ""),
                    body=form.get("Body", ""),
                    status_callback=form.get("StatusCallback"),
                )
            )
        self._reply(
            handler,
            201,
            {
                "sid": sid,
                "account_sid": match["sid"],
                "to": form.get("To"),
                "from": form.get("From"),
                "body": form.get("Body"),
                "status": "queued",
                "num_segments": "1",
            },
        )

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> FakeTwilio:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
