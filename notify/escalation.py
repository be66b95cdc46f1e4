"""The escalation engine: open incidents, run due steps, and take people's answers.

healthchecks' shape: ``Incident.next_step_at`` is the indexed "due at" column the sweeper scans;
every change is applied by a guarded update on ``Incident.version`` and abandoned unless it hit
exactly one row, so two schedulers (or a scheduler and a reply) never both act. Messages are
written to the ``Notification`` outbox in the same transaction as the step claim and sent
afterwards by ``deliver_pending``. Every step, message, failure, reply and outcome writes an
``IncidentEvent`` row: the audit trail and the timeline staff read.

Before each step of an inactivity incident the engine asks whether it is held: silenced
(``notify.silences``: this household, "in hospital") or inhibited (``notify.inhibition``: its
area's data is out). A held incident stays open, sends nothing and is re-checked (``notify.holds``).
Named crash points (``notify.crashpoints``) let the fault tests kill the process mid-step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from data.tables.incidents import (
    Incident,
    IncidentEvent,
    IncidentStatus,
    Notification,
)
from data.tables.roster import Contact, Household
from notify.actions import Outcome, acknowledge, claim, resolve, resolve_in
from notify.channels.base import Channel
from notify.claim_reminders import remind_claimed
from notify.crashpoints import crash_point
from notify.delivery import DeliveryReport, deliver_pending
from notify.holds import RESUMED, hold_for, last_hold_event
from notify.planner import EventDraft, Plan, plan_step
from notify.policy import DEFAULT_POLICY, OPERATOR_ONLY_SNAPSHOT, Policy
from notify.templates import format_since, render
from notify.timeline import add_event

logger = logging.getLogger(__name__)

__all__ = [
    "Outcome",
    "TickReport",
    "acknowledge",
    "apply_plan",
    "claim",
    "close_on_recovery",
    "escalation_tick",
    "open_incident",
    "plan_incident",
    "resolve",
]

OUTAGE = "outage"


@dataclass(slots=True)
class TickReport:
    """What one sweep did: steps applied, claims lost to another scheduler, and delivery."""

    steps_applied: int = 0
    held: int = 0
    claims_lost: int = 0
    queued: int = 0
    claim_reminders: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)


def _find_active(session: Session, household_id: str, kind: str) -> Incident | None:
    return session.exec(
        select(Incident).where(
            Incident.household_id == household_id,
            Incident.kind == kind,
            Incident.status != IncidentStatus.resolved,
        )
    ).first()


def _insert_unless_open(session: Session, values: dict[str, Any]) -> int | None:
    """Insert the incident unless one is already open; returns its id, or None if one was.

    The partial unique index settles the race between two writers: ``ON CONFLICT DO NOTHING``
    makes the loser's insert a no-op instead of an ``IntegrityError``, so the caller's
    transaction (its findings, its checkpoint) is not rolled back with it.
    """
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}[dialect]
    statement = (
        insert(Incident)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["household_id", "kind"],
            index_where=text("status != 'resolved'"),
        )
        .returning(Incident.id)
    )
    return session.execute(statement).scalar_one_or_none()


def open_incident(
    *,
    session: Session,
    household_id: str,
    kind: str,
    severity: str,
    reason: str,
    score: float,
    since: datetime | None,
    now: datetime,
    policy: Policy = DEFAULT_POLICY,
) -> tuple[Incident, bool]:
    """Open an incident, or return the one already open for this household and kind.

    The policy is frozen onto the incident; the first step is due at once (the next tick runs
    it). Outages take the operator-only path: no step ever messages the roster; one console
    alert goes to the operators. Runs in the caller's transaction: the caller commits.

    Returns
    -------
    (incident, newly_opened)
    """
    existing = _find_active(session, household_id, kind)
    if existing is not None:
        return existing, False
    outage = kind == OUTAGE
    incident_id = _insert_unless_open(
        session,
        {
            "household_id": household_id,
            "kind": kind,
            "severity": severity,
            "status": IncidentStatus.open,
            "reason": reason,
            "score": score,
            "opened_at": now,
            "since": since,
            "policy_snapshot": dict(OPERATOR_ONLY_SNAPSHOT) if outage else policy.snapshot(),
            "step_index": 0,
            "next_step_at": None if outage else now,
            "version": 0,
        },
    )
    if incident_id is None:
        logger.info("incident for %s/%s was opened concurrently; using it", household_id, kind)
        return _find_active(session, household_id, kind), False
    add_event(
        session, incident_id, "opened", now, incident_kind=kind, severity=severity, reason=reason
    )
    if outage:
        household = session.get(Household, household_id)
        timezone = household.timezone if household else "Asia/Tokyo"
        body = render("outage", household_id=household_id, since=format_since(since, timezone))
        session.add(
            Notification(
                incident_id=incident_id,
                step_index=0,
                contact_id=None,
                purpose="alert",
                topic=OUTAGE,
                channel="console",
                body=body,
                created_at=now,
            )
        )
        add_event(session, incident_id, "operator_alerted", now, channel="console")
    session.flush()
    return session.get(Incident, incident_id), True


def close_on_recovery(
    *, session: Session, household_id: str, kind: str, now: datetime
) -> int | None:
    """The household looks normal again: close its active incident, if nobody is on the way.

    An inactivity incident closes as ``fine`` (the resident is using electricity again), an
    outage as ``other`` (data flows again); everyone asked is told. A claimed incident stays:
    the person going there will report what they found. Runs in the caller's transaction.
    Returns the id of the incident closed, or None.
    """
    incident = _find_active(session, household_id, kind)
    if incident is None:
        return None
    if incident.status == IncidentStatus.claimed:
        add_event(session, incident.id, "recovered", now, note="left open: someone is going")
        return None
    outcome = Outcome.other if kind == OUTAGE else Outcome.fine
    done = resolve_in(session, incident, outcome=outcome, now=now, note="activity resumed")
    return incident.id if done else None


def plan_incident(engine: Engine, incident_id: int, now: datetime) -> Plan | None:
    """Read an incident and decide its due steps (None if it is not open and due)."""
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.status != IncidentStatus.open:
            return None
        if incident.next_step_at is None or incident.next_step_at > now:
            return None
        household = session.get(Household, incident.household_id)
        # Before each step: silenced (this household) or inhibited (its area's outage)?
        hold = hold_for(session, incident, household, now)
        last_hold = last_hold_event(session, incident_id)
        if hold is not None:
            plan = Plan(incident.id, incident.version, incident.step_index, hold.until)
            plan.held = hold.kind
            if last_hold != hold.kind:
                plan.events.append(EventDraft(kind=hold.kind, detail=hold.detail))
            return plan
        contacts = list(
            session.exec(select(Contact).where(Contact.household_id == incident.household_id))
        )
        notifications = list(
            session.exec(select(Notification).where(Notification.incident_id == incident_id))
        )
        events = list(
            session.exec(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id))
        )
        plan = plan_step(
            incident=incident,
            household=household,
            contacts=contacts,
            notifications=notifications,
            events=events,
            now=now,
        )
        if last_hold is not None and last_hold != RESUMED:
            plan.events.insert(0, EventDraft(kind=RESUMED, detail={"after": last_hold}))
        return plan


def apply_plan(engine: Engine, plan: Plan, now: datetime) -> bool:
    """Claim the step and write its outbox rows and events in one transaction.

    The claim is the guarded update: it only succeeds if the incident is still open and at the
    version the plan was made from. Returns False (and writes nothing) if another scheduler or a
    reply got there first.
    """
    with Session(engine) as session:
        # The guarded UPDATE is the transaction's first statement: on PostgreSQL it waits for a
        # competing claim's row lock and then re-checks the version; on SQLite it takes the write
        # lock before anything is read, so no stale snapshot can be written from.
        claimed = session.execute(
            update(Incident)
            .where(
                col(Incident.id) == plan.incident_id,
                col(Incident.version) == plan.version,
                col(Incident.status) == IncidentStatus.open,
            )
            .values(
                step_index=plan.step_index,
                next_step_at=plan.next_step_at,
                version=Incident.version + 1,
            )
        )
        if claimed.rowcount != 1:
            session.rollback()
            return False
        for draft in plan.notifications:
            session.add(
                Notification(
                    incident_id=plan.incident_id,
                    step_index=draft.step_index,
                    contact_id=draft.contact_id,
                    purpose=draft.purpose,
                    topic=draft.topic,
                    channel=draft.channel,
                    body=draft.body,
                    created_at=now,
                )
            )
        for event in plan.events:
            add_event(session, plan.incident_id, event.kind, now, event.contact_id, **event.detail)
        try:
            session.flush()
            crash_point("before_step_commit")
            session.commit()
        except IntegrityError:
            # The outbox's unique key refused a duplicate ask: someone else ran this step.
            session.rollback()
            return False
        crash_point("after_step_claim")
        return True


def escalation_tick(
    *, engine: Engine, now: datetime, channels: dict[str, Channel], limit: int = 500
) -> TickReport:
    """Run every due step, then deliver what is waiting in the outbox."""
    report = TickReport()
    with Session(engine) as session:
        due = session.exec(
            select(Incident.id)
            .where(Incident.status == IncidentStatus.open, col(Incident.next_step_at) <= now)
            .order_by(col(Incident.next_step_at))
            .limit(limit)
        ).all()
    for incident_id in due:
        plan = plan_incident(engine, incident_id, now)
        if plan is None:
            continue
        if apply_plan(engine, plan, now):
            if plan.held:
                report.held += 1
            else:
                report.steps_applied += 1
            report.queued += len(plan.notifications)
        else:
            report.claims_lost += 1
    report.claim_reminders = remind_claimed(engine=engine, now=now)
    report.delivery = deliver_pending(engine=engine, now=now, channels=channels)
    return report
