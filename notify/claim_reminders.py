"""Claimed but not reported: remind the person who said "I'll go", then staff.

A volunteer's "1" stops the chain, so a claim that is never followed up would leave the resident
alone with nobody looking. Claiming sets the incident's "due at" (``next_step_at``) to
``REMIND_AFTER`` later; the escalation tick sweeps claimed incidents that are due, reminds the
claimer, and from the second reminder on tells the household's staff too. Each reminder is a
guarded update (two schedulers cannot both send it) and a row in the outbox and the timeline.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables.incidents import Incident, IncidentEvent, IncidentStatus, Notification
from data.tables.roster import Contact, ContactRole, Household
from notify.actions import CLAIM_REMIND_AFTER as REMIND_AFTER
from notify.actions import _guarded_change
from notify.templates import render
from notify.timeline import add_event

#: From this reminder on, staff are told as well as the claimer.
STAFF_FROM_ROUND = 2
EVENT = "claim_reminder"


def remind_claimed(*, engine: Engine, now: datetime, limit: int = 500) -> int:
    """Queue reminders for claimed incidents with no outcome by their due time. Returns how many."""
    with Session(engine) as session:
        due = session.exec(
            select(Incident.id)
            .where(Incident.status == IncidentStatus.claimed, col(Incident.next_step_at) <= now)
            .order_by(col(Incident.next_step_at))
            .limit(limit)
        ).all()
    return sum(_remind(engine, incident_id, now) for incident_id in due)


def _remind(engine: Engine, incident_id: int, now: datetime) -> bool:
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.status != IncidentStatus.claimed:
            return False
        if not _guarded_change(
            session, incident, (IncidentStatus.claimed,), next_step_at=now + REMIND_AFTER
        ):
            session.rollback()
            return False  # someone else reminded, or the outcome came in meanwhile
        done = session.exec(
            select(func.count())
            .select_from(IncidentEvent)
            .where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind == EVENT)
        ).one()
        round_ = done + 1
        household = session.get(Household, incident.household_id)
        recipients = [session.get(Contact, incident.claimed_by_contact_id)]
        if round_ >= STAFF_FROM_ROUND:
            recipients += session.exec(
                select(Contact).where(
                    Contact.household_id == incident.household_id,
                    Contact.role == ContactRole.staff,
                )
            ).all()
        for contact in recipients:
            if contact is None or contact.disabled_at is not None:
                continue
            session.add(
                Notification(
                    incident_id=incident.id,
                    step_index=incident.step_index,
                    contact_id=contact.id,
                    purpose="reminder",
                    topic=f"claim-{round_}",
                    channel="sms",
                    body=render(
                        "claim_reminder",
                        contact.language,
                        name=household.name,
                        incident_id=incident.id,
                    ),
                    created_at=now,
                )
            )
        add_event(
            session,
            incident.id,
            EVENT,
            now,
            incident.claimed_by_contact_id,
            round=round_,
            staff_told=round_ >= STAFF_FROM_ROUND,
        )
        session.commit()
        return True
