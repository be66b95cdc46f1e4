"""Where log records go: text for a person at a terminal, or one JSON object a line for a collector.

``configure`` installs one stderr handler on the root logger, chosen by ``[logging]`` (or
``AREAWATCH_LOG_FORMAT`` / ``AREAWATCH_LOG_LEVEL``). A JSON line carries ``time`` (UTC),
``level``, ``logger``, ``message`` and every ``extra=`` the call passed (``job``, ``source``,
counts, ``incident_id``, ``household_id``: household ids are pseudonymous codes). Names, phone
numbers and addresses are never logged on purpose; as a safety net, ``RedactPhones`` masks
anything in a record that looks like a phone number, in both formats.

The formatter is thirty lines of the standard library: python-json-logger would add a dependency
for the same output, and the redaction has to run before formatting anyway.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TextIO

# E.164 (+ and 8 to 15 digits, spaces or hyphens allowed between groups) and Japanese domestic
# mobile / IP-phone numbers (0X0-XXXX-XXXX, with or without hyphens).
PHONE = re.compile(r"(?<![\w+])(?:\+\d(?:[ -]?\d){7,14}|0\d0-?\d{4}-?\d{4})(?!\w)")
MASK = "[phone]"

# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("areawatch_job", default=None)


def redact(text: str) -> str:
    """Mask phone numbers.

    >>> redact("to +819012345678 and 090-1234-5678, incident 12")
    'to [phone] and [phone], incident 12'
    """
    return PHONE.sub(MASK, text)


class RedactPhones(logging.Filter):
    """Bake the message (arguments included) and extras with phone numbers masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class AddJob(logging.Filter):
    """Name the scheduler job a record was written in (see ``job``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        name = _job.get()
        if name is not None and not hasattr(record, "job"):
            record.job = name
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info or record.exc_text:
            entry["exception"] = record.exc_text or redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


@contextmanager
def job(name: str) -> Iterator[None]:
    """Records written inside carry ``job=name`` (one scheduler job, one thread)."""
    token = _job.set(name)
    try:
        yield
    finally:
        _job.reset(token)


def configure(
    *,
    format: str = "text",  # noqa: A002  (the settings' own word)
    level: str = "WARNING",
    verbose: bool = False,
    stream: TextIO | None = None,
) -> None:
    """Send every record at ``level`` (INFO with ``verbose``) and above to stderr, redacted.

    Called again (once the settings file is read), it replaces its own handler. Like
    ``logging.basicConfig`` it leaves alone a root logger that someone else has set up (a test
    runner, an application embedding ours), unless given a ``stream`` explicitly.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "areawatch", False)]:
        root.removeHandler(old)
    if root.handlers and stream is None:
        return
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.areawatch = True  # type: ignore[attr-defined]
    if format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(AddJob())
    handler.addFilter(RedactPhones())
    root.addHandler(handler)
    chosen = logging.getLevelName(level.upper())
    root.setLevel(min(chosen, logging.INFO) if verbose else chosen)


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, as ``logging.lastResort`` does."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass
