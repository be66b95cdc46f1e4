"""Sending the outbox: each ``Notification`` is sent once.

A pending notification is claimed by a guarded update (``pending`` -> ``sending``, with a lease in
``next_attempt_at``) and committed *before* the provider is called; the result is written after.
Two workers cannot both claim it, and a crash between the send and the write leaves the row in
``sending``, where it is never resent blindly: once the lease is over, the provider's log says
whether it went (Twilio SMS), or else it is given up as "unknown" (see ``_recover_stuck``).

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
from data.tables.roster import Contact, ContactRole, Household
from notify.budget import BUDGET_EXHAUSTED, BudgetGuard, alert_budget_exhausted_once
from notify.channels.base import Channel, ChannelError, Message, SendResult
from notify.crashpoints import crash_point
from notify.operators import disable_contact
from notify.planner import address_on, live_asks_at
from notify.timeline import add_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
FIRST_BACKOFF = timedelta(minutes=1)
# How long a claimed send may take before a later sweep presumes its worker died.
SENDING_LEASE = timedelta(minutes=10)
UNKNOWN_OUTCOME = "unknown outcome after crash"
# Our clock and the provider's may disagree a little about when a send was made.
PROVIDER_CLOCK_SKEW = timedelta(minutes=1)


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0
    over_budget: int = 0


def _event(session: Session, n: Notification, kind: str, now: datetime, **detail: Any) -> None:
    add_event(session, n.incident_id, kind, now, n.contact_id, notification_id=n.id, **detail)


def _set_status(session: Session, n: Notification, expected: NotificationStatus, **values) -> bool:
    result = session.execute(
        update(Notification)
        .where(col(Notification.id) == n.id, col(Notification.status) == expected)
        .values(**values)
    )
    return result.rowcount == 1


def _recover_stuck(
    engine: Engine, now: datetime, report: DeliveryReport, channels: dict[str, Channel]
) -> None:
    """Settle sends whose worker died between claiming them and recording the result.

    A channel that can read the provider's log (``find_sent``, Twilio SMS) is asked whether the
    message was accepted: if it was, the row is recorded as sent (with the provider's id, so
    status callbacks still match); if not, it goes back to ``pending`` and is sent now. Either
    way the phone gets it exactly once. The lease (``SENDING_LEASE``, far longer than a send's
    timeout) makes sure the dead worker's request is over before we look.

    Without such a lookup we cannot know. Resending would risk a second "are you all right?"
    to a frightened resident or a second volunteer sent to the door, and the chain does not
    depend on this one message: its timer keeps running and the next step goes out anyway. So
    the row is marked failed, and the event tells staff, who can check the provider's log.
    """
    with Session(engine) as session:
        stuck = session.exec(
            select(Notification, Contact)
            .join(Contact, col(Notification.contact_id) == Contact.id, isouter=True)
            .where(
                Notification.status == NotificationStatus.sending,
                col(Notification.next_attempt_at) <= now,
            )
        ).all()
        session.expunge_all()
    for n, contact in stuck:
        # The provider is asked outside any transaction: no lock is held over a network call.
        verdict = _ask_provider_log(engine, n, contact, channels.get(n.channel))
        with Session(engine) as session:
            if verdict is _NOT_SENT:
                if _set_status(
                    session,
                    n,
                    NotificationStatus.sending,
                    status=NotificationStatus.pending,
                    next_attempt_at=None,
                ):
                    _event(session, n, "send_recovered", now, reason="provider has no record")
            elif isinstance(verdict, SendResult):
                if _set_status(
                    session,
                    n,
                    NotificationStatus.sending,
                    status=NotificationStatus.sent,
                    sent_at=now,
                    provider_id=verdict.provider_id,
                    error=None,
                    next_attempt_at=None,
                ):
                    _event(session, n, "sent", now, channel=n.channel, recovered=True)
            elif _set_status(
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


_NOT_SENT = object()


def _ask_provider_log(
    engine: Engine, n: Notification, contact: Contact | None, channel: Channel | None
) -> SendResult | object | None:
    """What the provider's log says of a stuck send: its ``SendResult`` if it was accepted,
    ``_NOT_SENT`` if it was not, None if the channel cannot tell."""
    find_sent = getattr(channel, "find_sent", None)
    if find_sent is None or contact is None or n.next_attempt_at is None:
        return None
    claimed_at = n.next_attempt_at - SENDING_LEASE
    with Session(engine) as session:
        recorded = frozenset(
            session.exec(
                select(Notification.provider_id).where(
                    Notification.contact_id == n.contact_id,
                    col(Notification.provider_id).is_not(None),
                )
            ).all()
        )
    to = address_on(contact, n.channel)
    if to is None:
        return None
    message = Message(notification_id=n.id, to=to, body=n.body, purpose=n.purpose)
    try:
        found = find_sent(message, claimed_at - PROVIDER_CLOCK_SKEW, recorded)
    except ChannelError:
        logger.warning("could not read the provider's log for notification %s", n.id)
        return None
    return _NOT_SENT if found is None else found


def move_on_if_nobody_left(session: Session, n: Notification, now: datetime) -> None:
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
        # A refused email address says nothing about the phone: the contact stays in use.
        if error.permanent and n.channel != "email":
            disable_contact(session, n, code=error.code, reason=f"{error} ({n.channel})", now=now)
        session.flush()
        move_on_if_nobody_left(session, n, now)
        session.commit()
        return "failed"


def _fail_unsent(
    engine: Engine,
    n: Notification,
    reason: str,
    now: datetime,
    *,
    kind: str = "send_failed",
    organisation_id: str | None = None,
) -> bool:
    with Session(engine) as session:
        if not _set_status(
            session, n, NotificationStatus.pending, status=NotificationStatus.failed, error=reason
        ):
            return False
        _event(session, n, kind, now, reason=reason, permanent=False)
        if kind == "sms_budget_exhausted" and organisation_id is not None:
            alert_budget_exhausted_once(session, n, organisation_id, now)
        session.flush()
        move_on_if_nobody_left(session, n, now)
        session.commit()
        return True


def _budget_exempt(n: Notification, contact: Contact | None) -> bool:
    """Only SMS count, and staff are always told: a person in danger outranks a budget."""
    return n.channel != "sms" or contact is None or contact.role == ContactRole.staff


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
    _recover_stuck(engine, now, report, channels)
    with Session(engine) as session:
        rows = session.exec(
            select(Notification, Contact, Household.organisation_id)
            .join(Incident, col(Incident.id) == Notification.incident_id)
            # Outer: an incident about a data source has no household (operators' console only).
            .join(Household, col(Household.id) == Incident.household_id, isouter=True)
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
    with Session(engine) as budget_session:
        budget = BudgetGuard(budget_session, now)
        for n, contact, organisation_id in rows:
            _deliver_one(
                engine, n, contact, organisation_id, channels, budget, now, max_attempts, report
            )
    return report


def _deliver_one(
    engine: Engine,
    n: Notification,
    contact: Contact | None,
    organisation_id: str,
    channels: dict[str, Channel],
    budget: BudgetGuard,
    now: datetime,
    max_attempts: int,
    report: DeliveryReport,
) -> None:
    channel = channels.get(n.channel)
    to = "operator" if contact is None else address_on(contact, n.channel)
    if channel is None or to is None or (contact is not None and contact.disabled_at is not None):
        # Nothing to try: the channel is not configured here, the number proved invalid, or
        # the address was removed from the roster after the message was planned.
        if channel is None:
            reason = f"channel {n.channel!r} not configured"
        else:
            reason = "contact is disabled" if to is not None else f"no address for {n.channel}"
        if _fail_unsent(engine, n, reason, now):
            report.failed += 1
        return
    exempt = _budget_exempt(n, contact)
    if not exempt and not budget.allows(organisation_id, n.body):
        if _fail_unsent(
            engine,
            n,
            BUDGET_EXHAUSTED,
            now,
            kind="sms_budget_exhausted",
            organisation_id=organisation_id,
        ):
            report.failed += 1
            report.over_budget += 1
        return
    if not _claim(engine, n, now):
        return  # another worker has it
    crash_point("after_sending_claim")
    language = contact.language if contact is not None else "ja"
    message = Message(
        notification_id=n.id, to=to, body=n.body, purpose=n.purpose, language=language
    )
    try:
        result = channel.send(message)
    except ChannelError as error:
        outcome = _record_failure(engine, n, error, now, max_attempts)
        if outcome == "retrying":
            report.retrying += 1
        else:
            report.failed += 1
        return
    crash_point("after_provider_accepted")
    if n.channel == "sms":
        budget.spend(organisation_id, n.body)
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
    crash_point("after_sent_marked")
    report.sent += 1
