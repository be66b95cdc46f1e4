"""Stale sources: a feed with no successful pull for too long opens an operator incident.

healthchecks' shape: a source's state (fresh or stale) is derived in one pure function from its
last success (or, if it never succeeded, when it was first seen) and ``now``; nothing stores it
twice. The check makes the incidents match: a stale source has one open ``source_stale``
incident (the database's partial unique index on ``(source, kind)`` settles two checks racing),
and a source that pulls again has none.

Such an incident belongs to the source, not to a household (``Incident.household_id`` is None,
``Incident.source`` names it). It is for operators only, like a meter outage: its policy is the
empty operator-only one, so the escalation sweep never picks it up and nobody on the roster is
ever messaged; one console alert goes to the operators when it opens and one when it closes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from data.db import session_scope
from data.tables import SourceCursor
from data.tables.incidents import Incident, IncidentStatus
from notify.operators import alert_operators
from notify.policy import OPERATOR_ONLY_SNAPSHOT
from notify.templates import format_since
from notify.timeline import add_event
from watch.settings import SourceSettings

logger = logging.getLogger(__name__)

SOURCE_STALE = "source_stale"
# Without ``stale_after_minutes``: three missed pulls in a row.
DEFAULT_STALE_PULLS = 3
ACTIVE = (IncidentStatus.open, IncidentStatus.acknowledged, IncidentStatus.claimed)


def stale_after(source: SourceSettings) -> timedelta:
    minutes = source.stale_after_minutes
    if minutes is None:
        minutes = DEFAULT_STALE_PULLS * source.every_minutes
    return timedelta(minutes=minutes)


def stale_since(cursor: SourceCursor | None) -> datetime | None:
    """Where staleness is counted from: the last success, else when the source was first seen."""
    if cursor is None:
        return None
    return cursor.last_success_at or cursor.first_seen_at


def is_stale(cursor: SourceCursor | None, limit: timedelta, now: datetime) -> bool:
    """Pure: no success for longer than ``limit`` (a source never seen before is not stale).

    >>> from datetime import UTC
    >>> noon = datetime(2025, 1, 6, 12, tzinfo=UTC)
    >>> row = SourceCursor(source="meter", last_success_at=noon - timedelta(hours=2))
    >>> is_stale(row, timedelta(minutes=90), noon), is_stale(row, timedelta(hours=3), noon)
    (True, False)
    """
    since = stale_since(cursor)
    return since is not None and now - since > limit


@dataclass
class StalenessReport:
    stale: list[str] = field(default_factory=list)
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)


def check_sources(
    *, engine: Engine, sources: Sequence[SourceSettings], now: datetime, timezone: str
) -> StalenessReport:
    """Open a ``source_stale`` incident for each newly stale source; close those that recovered."""
    report = StalenessReport()
    for source in sources:
        cursor = _seen(engine, source.name, now)
        stale = is_stale(cursor, stale_after(source), now)
        with session_scope(engine) as session:
            active = _active(session, source.name)
            if stale:
                report.stale.append(source.name)
                if active is None:
                    opened = _open(session, source, cursor, now, timezone)
                    if opened is not None:
                        report.opened.append(opened)
            elif active is not None and _close(session, active, now):
                report.closed.append(active.id)
    return report


def _seen(engine: Engine, name: str, now: datetime) -> SourceCursor:
    """The source's row, created (or given its ``first_seen_at``) the first time it is checked."""
    for attempt in range(2):
        try:
            with session_scope(engine) as session:
                row = session.get(SourceCursor, name)
                if row is None:
                    row = SourceCursor(source=name)
                    session.add(row)
                if row.first_seen_at is None:
                    row.first_seen_at = now
                session.flush()
                session.expunge(row)
                return row
        except IntegrityError:
            if attempt:  # a pull created the row meanwhile: the second try updates it
                raise
    raise AssertionError("unreachable")


def _active(session: Session, name: str) -> Incident | None:
    return session.exec(
        select(Incident).where(
            Incident.source == name,
            Incident.kind == SOURCE_STALE,
            col(Incident.status).in_(ACTIVE),
        )
    ).first()


def _open(
    session: Session, source: SourceSettings, cursor: SourceCursor, now: datetime, timezone: str
) -> int | None:
    since = stale_since(cursor)
    error = f"; last error: {cursor.last_error}" if cursor.last_error else ""
    reason = f"no successful pull of source {source.name} since {since.isoformat()}{error}"
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[
        session.get_bind().dialect.name
    ]
    incident_id = session.execute(
        insert(Incident)
        .values(
            household_id=None,
            source=source.name,
            kind=SOURCE_STALE,
            severity="alert",
            status=IncidentStatus.open,
            reason=reason[:400],
            score=0.0,
            opened_at=now,
            since=since,
            policy_snapshot=dict(OPERATOR_ONLY_SNAPSHOT),
            step_index=0,
            next_step_at=None,  # never due: the escalation sweep leaves it alone
            version=0,
        )
        .on_conflict_do_nothing(
            index_elements=["source", "kind"], index_where=text("status != 'resolved'")
        )
        .returning(Incident.id)
    ).scalar_one_or_none()
    if incident_id is None:
        return None  # another check opened it a moment ago
    add_event(session, incident_id, "opened", now, incident_kind=SOURCE_STALE, source=source.name)
    body = (
        f"[Watch ops] Source {source.name}: no successful pull since "
        f"{format_since(since, timezone, 'en')}{error[:200]}. Households fed by it may look "
        "silent: check the feed."
    )
    alert_operators(session, incident_id, 0, SOURCE_STALE, body, now)
    logger.warning("source %s is stale (incident %d opened)", source.name, incident_id)
    return incident_id


def _close(session: Session, incident: Incident, now: datetime) -> bool:
    closed = session.execute(
        update(Incident)
        .where(
            col(Incident.id) == incident.id,
            col(Incident.version) == incident.version,
            col(Incident.status).in_(ACTIVE),
        )
        .values(
            status=IncidentStatus.resolved,
            outcome="other",
            resolved_at=now,
            next_step_at=None,
            version=Incident.version + 1,
        )
    )
    if closed.rowcount != 1:
        return False  # closed (or changed) by someone else meanwhile
    add_event(session, incident.id, "resolved", now, outcome="other", note="source pulled again")
    body = f"[Watch ops] Source {incident.source} is pulling again."
    alert_operators(session, incident.id, 0, "source_recovered", body, now)
    logger.info("source %s recovered (incident %d closed)", incident.source, incident.id)
    return True
