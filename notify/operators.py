"""Telling the operators' console (the staff on duty) what needs a human: a number that proved
invalid, an SMS budget used up. Written to the outbox like any message, on the ``console`` channel,
in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from data.tables.incidents import Notification
from data.tables.roster import Contact, Household
from notify.templates import label, render
from notify.timeline import add_event


def alert_operators(
    session: Session, incident_id: int, step_index: int, topic: str, body: str, now: datetime
) -> None:
    session.add(
        Notification(
            incident_id=incident_id,
            step_index=step_index,
            contact_id=None,
            purpose="alert",
            topic=topic,
            channel="console",
            body=body,
            created_at=now,
        )
    )
    add_event(session, incident_id, "operator_alerted", now, topic=topic, channel="console")


def disable_contact(
    session: Session, n: Notification, *, code: int | str | None, reason: str, now: datetime
) -> bool:
    """Stop using a number the provider says is invalid; timeline event and console alert.

    Returns False (and does nothing) if the contact was already disabled.
    """
    if n.contact_id is None:
        return False
    disabled = session.execute(
        update(Contact)
        .where(col(Contact.id) == n.contact_id, col(Contact.disabled_at).is_(None))
        .values(disabled_at=now, disabled_reason=reason)
    )
    if disabled.rowcount != 1:
        return False
    add_event(
        session,
        n.incident_id,
        "contact_disabled",
        now,
        n.contact_id,
        notification_id=n.id,
        code=code,
    )
    row = session.exec(
        select(Household.id, Contact.role)
        .join(Contact, col(Contact.household_id) == Household.id)
        .where(Contact.id == n.contact_id)
    ).one()
    body = render("contact_disabled", household_id=row[0], who=label(row[1].value))
    alert_operators(session, n.incident_id, n.step_index, "contact_disabled", body, now)
    return True
