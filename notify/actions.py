"""What people do to an incident: acknowledge, claim, resolve, or hurry it along.

Each action is one guarded update on ``Incident.version`` (re-read and retried if a scheduler
or another reply changed the incident in between), with its event, in one transaction. Claiming
and resolving tell everyone already asked (an ``inform`` notification in the outbox).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables.incidents import Incident, IncidentStatus, Notification, NotificationStatus
from data.tables.roster import Contact, ContactRole, Household
from notify.planner import ASKING_PURPOSES
from notify.templates import label, render
from notify.timeline import add_event

ACTIVE_STATUSES = (IncidentStatus.open, IncidentStatus.acknowledged, IncidentStatus.claimed)


class Outcome(StrEnum):
    fine = "fine"
    away = "away"
    needed_help = "needed_help"
    false_alarm = "false_alarm"
    other = "other"


#: A claim with no outcome after this long is chased (``notify.claim_reminders``).
CLAIM_REMIND_AFTER = timedelta(minutes=60)


def _guarded_change(
    session: Session, incident: Incident, allowed: tuple[IncidentStatus, ...], **values: Any
) -> bool:
    """Apply ``values`` only if the incident is unchanged since read and in an allowed status."""
    if incident.status not in allowed:
        return False
    result = session.execute(
        update(Incident)
        .where(
            col(Incident.id) == incident.id,
            col(Incident.version) == incident.version,
            col(Incident.status).in_(allowed),
        )
        .values(version=Incident.version + 1, **values)
    )
    return result.rowcount == 1


def _inform_everyone(
    session: Session,
    incident: Incident,
    topic: str,
    now: datetime,
    actor_id: int | None,
    **fills: str,
) -> None:
    """Tell everyone already asked (not the resident, not the actor) how it ended."""
    household = session.get(Household, incident.household_id)
    rows = session.exec(
        select(Notification, Contact)
        .join(Contact, col(Notification.contact_id) == Contact.id)
        .where(
            Notification.incident_id == incident.id,
            col(Notification.purpose).in_(ASKING_PURPOSES),
            Notification.status != NotificationStatus.failed,
            Contact.role != ContactRole.resident,
        )
        .order_by(col(Notification.id))
    ).all()
    told: set[tuple[int, str]] = set()
    for notification, contact in rows:
        key = (contact.id, notification.channel)
        if contact.id == actor_id or key in told or contact.disabled_at is not None:
            continue
        told.add(key)
        words = {k: label(v, contact.language) for k, v in fills.items()}
        session.add(
            Notification(
                incident_id=incident.id,
                step_index=incident.step_index,
                contact_id=contact.id,
                purpose="inform",
                topic=topic,
                channel=notification.channel,
                body=render(topic, contact.language, name=household.name, **words),
                created_at=now,
            )
        )
        add_event(session, incident.id, "message", now, contact.id, purpose="inform", topic=topic)


def _act(
    engine: Engine,
    incident_id: int,
    action: Callable[[Session, Incident], bool | None],
    attempts: int = 3,
) -> bool:
    """Run ``action(session, incident)`` until its guarded update wins or it no longer applies."""
    for _ in range(attempts):
        with Session(engine) as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                return False
            outcome = action(session, incident)
            if outcome is None:  # lost a race: read again
                session.rollback()
                continue
            if outcome:
                session.commit()
            return outcome
    return False


def acknowledge(
    *, engine: Engine, incident_id: int, now: datetime, contact_id: int | None = None
) -> bool:
    """Someone has it in hand: the chain stops, nobody is yet on the way. False if too late."""

    def action(session: Session, incident: Incident) -> bool | None:
        if incident.status != IncidentStatus.open:
            return False
        if not _guarded_change(
            session,
            incident,
            (IncidentStatus.open,),
            status=IncidentStatus.acknowledged,
            next_step_at=None,
        ):
            return None
        add_event(session, incident_id, "acknowledged", now, contact_id)
        return True

    return _act(engine, incident_id, action)


def claim(*, engine: Engine, incident_id: int, contact_id: int, now: datetime) -> bool:
    """``contact_id`` is going there: the chain stops and everyone asked is told."""

    def action(session: Session, incident: Incident) -> bool | None:
        if incident.status not in (IncidentStatus.open, IncidentStatus.acknowledged):
            return False
        if not _guarded_change(
            session,
            incident,
            (IncidentStatus.open, IncidentStatus.acknowledged),
            status=IncidentStatus.claimed,
            claimed_by_contact_id=contact_id,
            # Due again if no outcome is reported: see notify.claim_reminders.
            next_step_at=now + CLAIM_REMIND_AFTER,
        ):
            return None
        add_event(session, incident_id, "claimed", now, contact_id)
        who = session.get(Contact, contact_id)
        _inform_everyone(session, incident, "claimed", now, contact_id, who=who.role.value)
        return True

    return _act(engine, incident_id, action)


def resolve_in(
    session: Session,
    incident: Incident,
    *,
    outcome: Outcome | str,
    now: datetime,
    contact_id: int | None = None,
    note: str | None = None,
) -> bool | None:
    """Resolve within the caller's transaction (not committed).

    Returns True when resolved, False when already closed, None when a concurrent change won
    the guarded update (read again and retry).
    """
    outcome = Outcome(outcome)
    if incident.status not in ACTIVE_STATUSES:
        return False
    if not _guarded_change(
        session,
        incident,
        ACTIVE_STATUSES,
        status=IncidentStatus.resolved,
        outcome=outcome.value,
        resolved_at=now,
        next_step_at=None,
    ):
        return None
    add_event(session, incident.id, "resolved", now, contact_id, outcome=outcome.value, note=note)
    _inform_everyone(session, incident, "resolved", now, contact_id, outcome=outcome.value)
    return True


def resolve(
    *,
    engine: Engine,
    incident_id: int,
    outcome: Outcome | str,
    now: datetime,
    contact_id: int | None = None,
    note: str | None = None,
) -> bool:
    """Close the incident with an outcome; everyone asked is told. False if already closed."""
    outcome = Outcome(outcome)

    def action(session: Session, incident: Incident) -> bool | None:
        return resolve_in(
            session, incident, outcome=outcome, now=now, contact_id=contact_id, note=note
        )

    return _act(engine, incident_id, action)


def hurry(*, engine: Engine, incident_id: int, now: datetime, reason: str) -> bool:
    """Make an open incident's next step due now (everyone asked at this step said no)."""

    def action(session: Session, incident: Incident) -> bool | None:
        if incident.status != IncidentStatus.open:
            return False
        if not _guarded_change(session, incident, (IncidentStatus.open,), next_step_at=now):
            return None
        add_event(session, incident_id, "hurried", now, reason=reason)
        return True

    return _act(engine, incident_id, action)
