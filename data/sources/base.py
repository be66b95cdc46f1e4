"""What every source is: something pulled on a schedule that remembers how far it got.

A source pulls only what is new since its last successful pull. Its position (``cursor``) and
the outcome of its pulls are kept in ``SourceCursor``, so a restart resumes where it stopped and
``areawatch status`` can show which feeds are late or failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from data.db import session_scope
from data.tables import SourceCursor


@dataclass
class PullReport:
    """The outcome of one pull of one source."""

    source: str
    files_loaded: list[str] = field(default_factory=list)
    files_rejected: list[str] = field(default_factory=list)
    # Files seen but still being written (or still settling): left for the next pull.
    files_waiting: list[str] = field(default_factory=list)
    rows_inserted: int = 0
    rows_corrected: int = 0
    rows_quarantined: int = 0
    # Set when the pull itself failed (folder missing, database unreachable); files stay put.
    error: str | None = None
    # Another process was pulling this source at the same moment; this pull did nothing.
    busy: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None


class Source(Protocol):
    """A feed of readings or TV events.

    ``pull`` reads what is new, loads it with the idempotent ingest functions and records its
    cursor; it never raises for a bad file or a failed pull, it reports them.
    """

    name: str
    kind: str

    def pull(self, *, engine: Engine, now: datetime) -> PullReport: ...


def read_cursor(engine: Engine, source: str) -> SourceCursor | None:
    with Session(engine) as session:
        return session.get(SourceCursor, source)


def record_progress(engine: Engine, *, source: str, cursor: str | None, now: datetime) -> None:
    """Move the cursor after a unit of work (a file) committed, and mark the source healthy."""
    values: dict[str, object] = {"last_success_at": now}
    if cursor is not None:
        values["cursor"] = cursor[-400:]
    _update(engine, source, values)


def record_error(engine: Engine, *, source: str, error: str, now: datetime) -> None:
    _update(engine, source, {"last_error": error[:400], "last_error_at": now})


def source_health(session: Session) -> list[SourceCursor]:
    """Every source's cursor, last success and last error, by name (for ``areawatch status``)."""
    return list(session.exec(select(SourceCursor).order_by(SourceCursor.source)).all())


def _update(engine: Engine, source: str, values: dict[str, object]) -> None:
    # Two overlapping pulls may both create the row; the loser retries as an update.
    for attempt in range(2):
        try:
            with session_scope(engine) as session:
                row = session.get(SourceCursor, source)
                if row is None:
                    row = SourceCursor(source=source)
                    session.add(row)
                for key, value in values.items():
                    setattr(row, key, value)
            return
        except IntegrityError:
            if attempt:
                raise
