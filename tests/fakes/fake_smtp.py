"""A local stand-in for an SMTP server, for the email channel's tests.

A threaded ``socketserver`` on 127.0.0.1 (port 0) speaking just enough SMTP for ``smtplib``:
EHLO/HELO, AUTH PLAIN, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT. Each accepted message is
recorded (envelope and the parsed ``EmailMessage``). It can be told to answer RCPT TO for an
address with a code (550 refuses it, 451 defers it), or to hang after accepting a connection
until the client times out.
"""

from __future__ import annotations

import base64
import socketserver
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage
    raw: bytes = field(repr=False, default=b"")

    @property
    def to(self) -> str:
        return str(self.message["To"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        """The decoded text, with the wire's CRLF line ends as ``\\n``."""
        return self.message.get_content().replace("\r\n", "\n")


def _address(argument: str) -> str:
    """``FROM:<a@b> SIZE=10`` -> ``a@b``."""
    value = argument.split(":", 1)[1].strip() if ":" in argument else argument
    return value.split(">", 1)[0].lstrip("<").strip()


class FakeSmtp:
    """Start with ``with FakeSmtp() as fake:``; point the channel at ``fake.host``/``fake.port``."""

    def __init__(self) -> None:
        self.mails: list[ReceivedMail] = []
        self.logins: list[tuple[str, str]] = []
        self.connections = 0
        self.hang = False  # when True, connections get no greeting until the server stops
        self._answers: dict[str, tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake._session(self)

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def answer_rcpt(self, address: str, code: int, text: str = "fake answer") -> None:
        """Answer ``RCPT TO:<address>`` with ``code`` (550 refuse, 451 try later)."""
        with self._lock:
            self._answers[address.lower()] = (code, text)

    def _session(self, handler: socketserver.StreamRequestHandler) -> None:
        with self._lock:
            self.connections += 1
        if self.hang:
            self._release.wait()
            return

        def reply(line: str) -> None:
            handler.wfile.write(line.encode() + b"\r\n")
            handler.wfile.flush()

        reply("220 fake.smtp ESMTP ready")
        mail_from: str | None = None
        rcpts: list[str] = []
        while True:
            raw = handler.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, argument = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                reply("250-fake.smtp\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN")
            elif verb == "HELO":
                reply("250 fake.smtp")
            elif verb == "AUTH":
                mechanism, _, initial = argument.partition(" ")
                if mechanism.upper() != "PLAIN" or not initial:
                    reply("504 only AUTH PLAIN with an initial response")
                    continue
                _, user, password = base64.b64decode(initial).decode().split("\0")
                with self._lock:
                    self.logins.append((user, password))
                reply("235 authenticated")
            elif verb == "MAIL":
                mail_from, rcpts = _address(argument), []
                reply("250 ok")
            elif verb == "RCPT":
                if mail_from is None:
                    reply("503 need MAIL first")
                    continue
                address = _address(argument)
                with self._lock:
                    code, text = self._answers.get(address.lower(), (250, "ok"))
                if code == 250:
                    rcpts.append(address)
                reply(f"{code} {text}")
            elif verb == "DATA":
                if not rcpts:
                    reply("554 no valid recipients")
                    continue
                reply("354 end with <CRLF>.<CRLF>")
                data = self._read_data(handler)
                message = BytesParser(policy=policy.default).parsebytes(data)
                with self._lock:
                    self.mails.append(ReceivedMail(mail_from or "", tuple(rcpts), message, data))
                mail_from, rcpts = None, []
                reply("250 queued")
            elif verb == "RSET":
                mail_from, rcpts = None, []
                reply("250 ok")
            elif verb == "NOOP":
                reply("250 ok")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:
                reply("502 command not implemented")

    @staticmethod
    def _read_data(handler: socketserver.StreamRequestHandler) -> bytes:
        lines = []
        while True:
            raw = handler.rfile.readline()
            if not raw or raw in (b".\r\n", b".\n"):
                break
            # Undo dot-stuffing (RFC 5321 4.5.2).
            lines.append(raw[1:] if raw.startswith(b"..") else raw)
        return b"".join(lines)

    def __enter__(self) -> FakeSmtp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
