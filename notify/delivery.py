"""Sending the outbox: each ``Notification`` is sent at most once.

A pending notification is claimed by a guarded update (``pending`` -> ``sending``, with a lease in
``next_attempt_at``) and committed *before* the provider is called; the result is written after.
Two workers cannot both claim it, and a crash between the send and the write leaves the row in
``sending``, where it is never resent blindly (see ``_recover_stuck``).

Retryable errors (5xx, timeouts) go back to ``pending`` with exponential backoff, up to
``max_attempts``; a permanent error (an invalid number) disables the contact and tells staff
through the timeline. Either way, when no ask of the current step can reach anyone any more, the
incident's next step is made due at once: waiting 30 minutes for an answer that cannot come
helps nobody.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, or_, select

from data.tables.incidents import (
    Incident,
    IncidentStatus,
    Notification,
    NotificationStatus,
)
from data.tables.roster import Contact
from notify.channels.base import Channel, ChannelError, Message
from notify.planner import live_asks_at
from notify.timeline import add_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
FIRST_BACKOFF = timedelta(minutes=1)
# How long a claimed send may take before a later sweep presumes its worker died.
SENDING_LEASE = timedelta(minutes=10)
UNKNOWN_OUTCOME = "unknown outcome after crash"


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0


def _event(session: Session, n: Notification, kind: str, now: datetime, **detail: Any) -> None:
    add_event(session, n.incident_id, kind, now, n.contact_id, notification_id=n.id, **detail)


def _set_status(session: Session, n: Notification, expected: NotificationStatus, **values) -> bool:
    result = session.execute(
        update(Notification)
        .where(col(Notification.id) == n.id, col(Notification.status) == expected)
        .values(**values)
    )
    return result.rowcount == 1


def _recover_stuck(engine: Engine, now: datetime, report: DeliveryReport) -> None:
    """Fail sends whose worker died mid-send, without sending them again.

    We cannot know whether the provider accepted the message before the crash. Resending would
    risk a second "are you all right?" to a frightened resident or a second volunteer sent to
    the door, and the chain does not depend on this one message: its timer keeps running and
    the next step goes out anyway. So the row is marked failed, and the event tells staff, who
    can check the provider's log (or the status callback may still report it delivered).
    """
    with Session(engine) as session:
        stuck = session.exec(
            select(Notification).where(
                Notification.status == NotificationStatus.sending,
                col(Notification.next_attempt_at) <= now,
            )
        ).all()
        for n in stuck:
            if _set_status(
                session,
                n,
                NotificationStatus.sending,
                status=NotificationStatus.failed,
                error=UNKNOWN_OUTCOME,
                next_attempt_at=None,
            ):
                _event(session, n, "delivery_unknown", now, reason=UNKNOWN_OUTCOME)
                report.unknown += 1
        session.commit()


def _move_on_if_nobody_left(session: Session, n: Notification, now: datetime) -> None:
    """If every ask of the incident's current step has failed, make the next step due now."""
    incident = session.get(Incident, n.incident_id)
    if incident is None or incident.status != IncidentStatus.open:
        return
    if n.purpose != "ask" or n.step_index != incident.step_index:
        return
    asks = session.exec(select(Notification).where(Notification.incident_id == incident.id)).all()
    if live_asks_at(list(asks), incident.step_index):
        return
    moved = session.execute(
        update(Incident)
        .where(col(Incident.id) == incident.id, col(Incident.version) == incident.version)
        .values(next_step_at=now, version=Incident.version + 1)
    )
    if moved.rowcount == 1:
        _event(session, n, "hurried", now, reason="nobody reachable at this step")


def _record_failure(
    engine: Engine, n: Notification, error: ChannelError, now: datetime, max_attempts: int
) -> str:
    retry = not error.permanent and n.attempts < max_attempts
    if retry:
        backoff = FIRST_BACKOFF * (2 ** (n.attempts - 1))
        values = {"status": NotificationStatus.pending, "next_attempt_at": now + backoff}
    else:
        values = {"status": NotificationStatus.failed, "next_attempt_at": None}
    with Session(engine) as session:
        if not _set_status(session, n, NotificationStatus.sending, error=str(error), **values):
            return "failed"  # our lease ran out and a sweep has already recorded this send
        if retry:
            _event(session, n, "send_retry", now, attempt=n.attempts, code=error.code)
            session.commit()
            return "retrying"
        _event(
            session,
            n,
            "send_failed",
            now,
            attempt=n.attempts,
            code=error.code,
            permanent=error.permanent,
        )
        if error.permanent and n.contact_id is not None:
            disabled = session.execute(
                update(Contact)
                .where(col(Contact.id) == n.contact_id, col(Contact.disabled_at).is_(None))
                .values(disabled_at=now, disabled_reason=f"{error} ({n.channel})")
            )
            if disabled.rowcount == 1:
                _event(session, n, "contact_disabled", now, code=error.code)
        session.flush()
        _move_on_if_nobody_left(session, n, now)
        session.commit()
        return "failed"


def _fail_unsent(engine: Engine, n: Notification, reason: str, now: datetime) -> bool:
    with Session(engine) as session:
        if not _set_status(
            session, n, NotificationStatus.pending, status=NotificationStatus.failed, error=reason
        ):
            return False
        _event(session, n, "send_failed", now, reason=reason, permanent=False)
        session.flush()
        _move_on_if_nobody_left(session, n, now)
        session.commit()
        return True


def _claim(engine: Engine, n: Notification, now: datetime) -> bool:
    with Session(engine) as session:
        claimed = session.execute(
            update(Notification)
            .where(
                col(Notification.id) == n.id,
                col(Notification.status) == NotificationStatus.pending,
                col(Notification.attempts) == n.attempts,
            )
            .values(
                status=NotificationStatus.sending,
                attempts=Notification.attempts + 1,
                next_attempt_at=now + SENDING_LEASE,
            )
        )
        if claimed.rowcount != 1:
            session.rollback()
            return False
        session.commit()
    n.attempts += 1
    return True


def deliver_pending(
    *,
    engine: Engine,
    now: datetime,
    channels: dict[str, Channel],
    max_attempts: int = MAX_ATTEMPTS,
    limit: int = 500,
) -> DeliveryReport:
    """Send every pending notification that is due, once."""
    report = DeliveryReport()
    _recover_stuck(engine, now, report)
    with Session(engine) as session:
        rows = session.exec(
            select(Notification, Contact)
            .join(Contact, col(Notification.contact_id) == Contact.id, isouter=True)
            .where(
                Notification.status == NotificationStatus.pending,
                or_(
                    col(Notification.next_attempt_at).is_(None),
                    col(Notification.next_attempt_at) <= now,
                ),
            )
            .order_by(col(Notification.id))
            .limit(limit)
        ).all()
        session.expunge_all()
    for n, contact in rows:
        channel = channels.get(n.channel)
        if channel is None or (contact is not None and contact.disabled_at is not None):
            # Nothing to try: the channel is not configured here, or the number proved invalid.
            reason = "contact is disabled" if channel else f"channel {n.channel!r} not configured"
            if _fail_unsent(engine, n, reason, now):
                report.failed += 1
            continue
        if not _claim(engine, n, now):
            continue  # another worker has it
        to = contact.phone if contact is not None else "operator"
        message = Message(notification_id=n.id, to=to, body=n.body, purpose=n.purpose)
        try:
            result = channel.send(message)
        except ChannelError as error:
            outcome = _record_failure(engine, n, error, now, max_attempts)
            if outcome == "retrying":
                report.retrying += 1
            else:
                report.failed += 1
            continue
        with Session(engine) as session:
            _set_status(
                session,
                n,
                NotificationStatus.sending,
                status=NotificationStatus.sent,
                sent_at=now,
                provider_id=result.provider_id,
                error=None,
                next_attempt_at=None,
            )
            _event(session, n, "sent", now, channel=n.channel, purpose=n.purpose)
            session.commit()
        report.sent += 1
    return report
