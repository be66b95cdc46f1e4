"""What staff do from the dashboard, each with an audit event naming the staff user.

The incident actions go through ``notify.actions`` (guarded updates; claiming and resolving
tell everyone asked). ``notify.actions`` records contacts, not dashboard users, so each action
is followed by a ``staff`` event whose detail names the user and the action. Callers have
already checked the user's organisation and role.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from data.tables import Contact, ContactRole, Incident, Silence, StaffUser
from data.tables.incidents import IncidentStatus
from notify import actions, silences
from notify.silences import create_silence
from notify.timeline import add_event

MAX_NOTE = 2000


class ActionRefused(ValueError):
    """The action does not apply (already resolved, unknown contact): the user is told why."""


@dataclass(frozen=True)
class ActionResult:
    done: bool
    status: str


def _audit(
    engine: Engine, incident_id: int, user: StaffUser, action: str, now: datetime, **detail: object
) -> None:
    with Session(engine) as session:
        add_event(session, incident_id, "staff", now, user=user.username, action=action, **detail)
        session.commit()


def _status(engine: Engine, incident_id: int) -> str:
    with Session(engine) as session:
        return session.get(Incident, incident_id).status.value


def acknowledge(
    *, engine: Engine, user: StaffUser, incident_id: int, now: datetime
) -> ActionResult:
    done = actions.acknowledge(engine=engine, incident_id=incident_id, now=now)
    if not done:
        raise ActionRefused("only an open incident can be acknowledged")
    _audit(engine, incident_id, user, "acknowledged", now)
    return ActionResult(True, _status(engine, incident_id))


def _claimant(session: Session, incident: Incident, contact_id: int | None) -> int:
    """The contact going there: the one named, else the household's first staff contact."""
    query = select(Contact).where(Contact.household_id == incident.household_id)
    if contact_id is not None:
        contact = session.exec(query.where(Contact.id == contact_id)).first()
        if contact is None:
            raise ActionRefused("that contact is not one of this household's")
        return contact.id
    staff = session.exec(
        query.where(Contact.role == ContactRole.staff).order_by(col(Contact.priority))
    ).first()
    if staff is None:
        raise ActionRefused("this household has no staff contact: choose who is going")
    return staff.id


def claim(
    *, engine: Engine, user: StaffUser, incident_id: int, now: datetime, contact_id: int | None
) -> ActionResult:
    with Session(engine) as session:
        contact_id = _claimant(session, session.get(Incident, incident_id), contact_id)
    if not actions.claim(engine=engine, incident_id=incident_id, contact_id=contact_id, now=now):
        raise ActionRefused("only an open or acknowledged incident can be claimed")
    _audit(engine, incident_id, user, "claimed", now, claimant_id=contact_id)
    return ActionResult(True, _status(engine, incident_id))


def resolve(
    *,
    engine: Engine,
    user: StaffUser,
    incident_id: int,
    now: datetime,
    outcome: str,
    note: str | None = None,
) -> ActionResult:
    try:
        outcome = actions.Outcome(outcome).value
    except ValueError as error:
        raise ActionRefused(f"unknown outcome {outcome!r}") from error
    note = (note or "").strip()[:MAX_NOTE] or None
    if not actions.resolve(
        engine=engine, incident_id=incident_id, outcome=outcome, now=now, note=note
    ):
        raise ActionRefused("this incident is already resolved")
    _audit(engine, incident_id, user, "resolved", now, outcome=outcome)
    return ActionResult(True, _status(engine, incident_id))


def add_note(
    *, engine: Engine, user: StaffUser, incident_id: int, now: datetime, text: str
) -> ActionResult:
    text = text.strip()
    if not text:
        raise ActionRefused("a note cannot be empty")
    with Session(engine) as session:
        add_event(session, incident_id, "note", now, user=user.username, text=text[:MAX_NOTE])
        session.commit()
    return ActionResult(True, _status(engine, incident_id))


def silence_household(
    *,
    engine: Engine,
    user: StaffUser,
    household_id: str,
    now: datetime,
    reason: str,
    starts_at: datetime,
    ends_at: datetime,
) -> int:
    """Record a silence; every open incident of the household gets an audit event. Its id."""
    reason = reason.strip()
    if not reason:
        raise ActionRefused("a silence needs a reason")
    with Session(engine) as session:
        try:
            silence = create_silence(
                session=session,
                household_id=household_id,
                reason=reason[:200],
                starts_at=starts_at,
                ends_at=ends_at,
                created_by=user.username,
                now=now,
            )
        except ValueError as error:
            raise ActionRefused(str(error)) from error
        for incident_id in session.exec(
            select(Incident.id).where(
                Incident.household_id == household_id, Incident.status != IncidentStatus.resolved
            )
        ):
            add_event(
                session,
                incident_id,
                "staff",
                now,
                user=user.username,
                action="silenced",
                silence_id=silence.id,
                until=ends_at.isoformat(),
            )
        session.commit()
        return silence.id


def end_silence(*, engine: Engine, user: StaffUser, silence_id: int, now: datetime) -> None:
    """End a pending or active silence now; the silence records who ended it, and every open
    incident of the household gets an audit event."""
    with Session(engine) as session:
        household_id = session.get(Silence, silence_id).household_id
        reason = f"ended early by {user.username}"[:200]
        if not silences.end_silence(session=session, silence_id=silence_id, now=now, reason=reason):
            raise ActionRefused("this silence is already over")
        for incident_id in session.exec(
            select(Incident.id).where(
                Incident.household_id == household_id, Incident.status != IncidentStatus.resolved
            )
        ):
            add_event(
                session,
                incident_id,
                "staff",
                now,
                user=user.username,
                action="silence_ended",
                silence_id=silence_id,
            )
        session.commit()
