"""A local stand-in for Twilio's Messages and Calls APIs, for the channels' tests.

A threaded ``http.server`` on 127.0.0.1 (port 0). It records each ``POST
/2010-04-01/Accounts/{sid}/Messages.json`` (To, From, Body, StatusCallback) and each ``POST
.../Calls.json`` (To, From, Twiml, StatusCallback), and answers like Twilio (201 with a JSON body
carrying a ``sid``: ``SM...`` for messages, ``CA...`` for calls), unless told to fail the next
requests: HTTP 500, HTTP 400 with a Twilio error code (21211), or hang until the client times out.
``GET .../Messages.json?To=...&From=...`` lists the messages received, newest first, as Twilio's
message log does; their ``date_created`` comes from ``fake.now`` when set (a test's frozen
business time), else the wall clock.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local_http import LocalHttpServer

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_CALLS_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Calls\.json$")


@dataclass(frozen=True)
class ReceivedMessage:
    account_sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    sid: str = ""
    date_created: datetime | None = None


@dataclass(frozen=True)
class ReceivedCall:
    account_sid: str
    to: str
    from_: str
    twiml: str
    status_callback: str | None
    sid: str


class FakeTwilio(LocalHttpServer):
    """Start with ``with FakeTwilio() as fake:``; point the client at ``fake.base_url``."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[ReceivedMessage] = []
        self.calls: list[ReceivedCall] = []
        self.now: datetime | None = None
        self.log_unreadable = False  # when True, listing messages answers HTTP 500
        self.requests = 0
        self._plan: list[tuple[str, int | None, int | None]] = []
        self._sids = itertools.count(1)
        self._call_sids = itertools.count(1)

    def fail_next(self, times: int = 1, *, status: int = 500, code: int | None = None) -> None:
        """The next ``times`` requests answer ``status`` (with Twilio ``code`` when given)."""
        with self._lock:
            self._plan.extend([("fail", status, code)] * times)

    def hang_next(self, times: int = 1) -> None:
        """The next ``times`` requests get no answer until the server stops."""
        with self._lock:
            self._plan.extend([("hang", None, None)] * times)

    def do_post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(handler.rfile.read(length).decode()).items()}
        with self._lock:
            self.requests += 1
            behaviour = self._plan.pop(0) if self._plan else ("ok", None, None)
        match = _MESSAGES_PATH.match(handler.path)
        call_match = _CALLS_PATH.match(handler.path)
        if match is None and call_match is None:
            self.send_json(handler, 404, {"code": 20404, "message": "not found", "status": 404})
            return
        kind, status, code = behaviour
        if kind == "hang":
            self.hang()
            return
        if kind == "fail":
            body = {"code": code or status, "message": "fake failure", "status": status}
            self.send_json(handler, status, body)
            return
        if call_match is not None:
            self._record_call(handler, call_match["sid"], form)
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
                    sid=sid,
                    date_created=self.now or datetime.now(UTC),
                )
            )
        self.send_json(
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

    def do_get(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        match = _MESSAGES_PATH.match(url.path)
        if match is None:
            self.send_json(handler, 404, {"code": 20404, "message": "not found", "status": 404})
            return
        if self.log_unreadable:
            self.send_json(handler, 500, {"code": 20500, "message": "fake failure", "status": 500})
            return
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        with self._lock:
            found = [
                m
                for m in reversed(self.messages)
                if m.account_sid == match["sid"]
                and query.get("To", m.to) == m.to
                and query.get("From", m.from_) == m.from_
            ]
        records = [
            {
                "sid": m.sid,
                "account_sid": m.account_sid,
                "to": m.to,
                "from": m.from_,
                "body": m.body,
                "status": "sent",
                "date_created": format_datetime(m.date_created, usegmt=True),
            }
            for m in found[: int(query.get("PageSize", 50))]
        ]
        self.send_json(handler, 200, {"messages": records, "next_page_uri": None, "page": 0})

    def _record_call(self, handler: BaseHTTPRequestHandler, account: str, form: dict) -> None:
        with self._lock:
            sid = f"CA{next(self._call_sids):032d}"
            self.calls.append(
                ReceivedCall(
                    account_sid=account,
                    to=form.get("To", ""),
                    from_=form.get("From", ""),
                    twiml=form.get("Twiml", ""),
                    status_callback=form.get("StatusCallback"),
                    sid=sid,
                )
            )
        body = {"sid": sid, "account_sid": account, "to": form.get("To"), "status": "queued"}
        self.send_json(handler, 201, {**body, "from": form.get("From")})
