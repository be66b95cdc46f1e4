"""What an incident's next step does: pure decisions, no database, no clock, no sending.

``plan_step`` takes what the engine read (the incident, its household, contacts, earlier
notifications and events) and ``now``, runs the current step through a dispatch table keyed by
step kind, and returns a ``Plan``: the messages to write to the outbox, the events for the
timeline, and where the chain stands afterwards (which step, due when, or stopped). The engine
applies a plan with one guarded update, so a plan made from stale data is simply abandoned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from data.tables.incidents import Incident, IncidentEvent, Notification, NotificationStatus
from data.tables.roster import Contact, Household
from notify.policy import QUIET_HOURS_EXEMPT, STEP_ROLE, Step, StepKind, steps_from_snapshot
from notify.quiet_hours import in_quiet_hours
from notify.templates import format_since, render

ASKING_PURPOSES = frozenset({"ask", "reminder"})


@dataclass(frozen=True, slots=True)
class NotificationDraft:
    contact_id: int | None
    step_index: int
    purpose: str
    topic: str
    channel: str
    body: str


@dataclass(frozen=True, slots=True)
class EventDraft:
    kind: str
    contact_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Plan:
    """The outcome of running due steps: applied only if the incident is still at ``version``."""

    incident_id: int
    version: int
    step_index: int
    next_step_at: datetime | None
    notifications: list[NotificationDraft] = field(default_factory=list)
    events: list[EventDraft] = field(default_factory=list)
    # Set when no step ran because the incident is held (``silenced``/``inhibited``).
    held: str | None = None


@dataclass(frozen=True, slots=True)
class Next:
    """Where the chain goes after a step: ``at`` is ``None`` when it stops."""

    step_index: int
    at: datetime | None


@dataclass(slots=True)
class StepContext:
    incident: Incident
    household: Household
    contacts: list[Contact]
    notifications: list[Notification]
    events: list[IncidentEvent]
    now: datetime
    plan: Plan

    def asked_at(self, index: int) -> set[int]:
        asked = {
            n.contact_id
            for n in self.notifications
            if n.step_index == index and n.purpose in ASKING_PURPOSES and n.contact_id is not None
        }
        asked |= {
            d.contact_id
            for d in self.plan.notifications
            if d.step_index == index and d.contact_id is not None
        }
        return asked

    def skipped_at(self, index: int) -> set[int]:
        return {
            e.contact_id
            for e in [*self.events, *self.plan.events]
            if e.kind == "skipped" and e.detail.get("index") == index and e.contact_id is not None
        }

    def entered(self, index: int) -> bool:
        return any(
            e.kind == "step" and e.detail.get("index") == index
            for e in [*self.events, *self.plan.events]
        )

    def event(self, kind: str, contact_id: int | None = None, **detail: Any) -> None:
        self.plan.events.append(EventDraft(kind=kind, contact_id=contact_id, detail=detail))

    def ask(self, contact: Contact, step: Step, index: int, purpose: str) -> None:
        body = render(
            step.kind.value,
            contact.language,
            name=self.household.name,
            area=self.household.area,
            since=format_since(
                self.incident.since or self.incident.opened_at,
                self.household.timezone,
                contact.language,
            ),
            incident_id=self.incident.id,
        )
        for channel in step.channels:
            if address_on(contact, channel) is None:
                # Asked on the step's other channels; the trail says this one could not reach.
                self.event("no_address", contact.id, index=index, channel=channel)
                continue
            self.plan.notifications.append(
                NotificationDraft(contact.id, index, purpose, step.kind.value, channel, body)
            )
            self.event("message", contact.id, index=index, purpose=purpose, channel=channel)


def _candidates(ctx: StepContext, step: Step, index: int, *, exclude_done: bool) -> list[Contact]:
    role = STEP_ROLE[step.kind]
    done = ctx.asked_at(index) | ctx.skipped_at(index) if exclude_done else set()
    pool = [
        c for c in ctx.contacts if c.role == role and c.disabled_at is None and c.id not in done
    ]
    return sorted(pool, key=lambda c: (c.priority, c.id))


def address_on(contact: Contact, channel: str) -> str | None:
    """Where ``channel`` reaches ``contact``: the email address for ``email``, else the phone."""
    return contact.email if channel == "email" else contact.phone


def _reachable(ctx: StepContext, step: Step, index: int, pool: list[Contact]) -> list[Contact]:
    reachable = []
    for contact in pool:
        if not any(address_on(contact, channel) for channel in step.channels):
            # E.g. an email-only step and no email on file: asking would send nothing.
            ctx.event("skipped", contact.id, index=index, reason="no_address")
        elif step.kind not in QUIET_HOURS_EXEMPT and in_quiet_hours(
            contact.quiet_start, contact.quiet_end, ctx.household.timezone, ctx.now
        ):
            ctx.event("skipped", contact.id, index=index, reason="quiet_hours")
        else:
            reachable.append(contact)
    return reachable


def _notify_contacts(ctx: StepContext, step: Step, index: int) -> Next:
    """Ask the next batch of this step's contacts; move on when nobody is left to ask."""
    batch = _reachable(ctx, step, index, _candidates(ctx, step, index, exclude_done=True))
    batch = batch[: step.batch_size] if step.batch_size else batch
    if batch:
        for contact in batch:
            ctx.ask(contact, step, index, "ask")
        return Next(index, ctx.now + timedelta(minutes=step.wait))
    if not ctx.asked_at(index):
        # The audit trail must say so: "no volunteer reachable" is what staff need to see.
        ctx.event("unreachable", index=index, role=STEP_ROLE[step.kind].value)
    return Next(index + 1, ctx.now)


def _repeat_staff(ctx: StepContext, step: Step, index: int) -> Next:
    """Remind every staff member, then come back after ``wait``; each round is its own index."""
    staff = _candidates(ctx, step, index, exclude_done=False)
    if not staff:
        ctx.event("unreachable", index=index, role=STEP_ROLE[step.kind].value)
        return Next(index, None)
    for contact in staff:
        ctx.ask(contact, step, index, "reminder")
    return Next(index + 1, ctx.now + timedelta(minutes=step.wait))


STEP_HANDLERS: dict[StepKind, Callable[[StepContext, Step, int], Next]] = {
    StepKind.notify_resident: _notify_contacts,
    StepKind.notify_family: _notify_contacts,
    StepKind.notify_volunteers: _notify_contacts,
    StepKind.notify_staff: _notify_contacts,
    StepKind.repeat_staff: _repeat_staff,
}


def step_at(steps: tuple[Step, ...], index: int) -> Step | None:
    """The step at ``index``; past the end, a final ``repeat_staff`` keeps repeating."""
    if index < len(steps):
        return steps[index]
    if steps and steps[-1].kind is StepKind.repeat_staff:
        return steps[-1]
    return None


def plan_step(
    *,
    incident: Incident,
    household: Household,
    contacts: list[Contact],
    notifications: list[Notification],
    events: list[IncidentEvent],
    now: datetime,
) -> Plan:
    """Run every step that is due at ``now`` (a step with nobody to ask falls through at once)."""
    steps = steps_from_snapshot(incident.policy_snapshot)
    plan = Plan(incident.id, incident.version, incident.step_index, incident.next_step_at)
    ctx = StepContext(incident, household, contacts, notifications, events, now, plan)
    index = incident.step_index
    # Each pass either waits, stops or moves one step on, so this bounds the loop.
    for _ in range(len(steps) + 2):
        step = step_at(steps, index)
        if step is None:
            ctx.event("chain_ended", index=index)
            plan.step_index, plan.next_step_at = index, None
            return plan
        if not ctx.entered(index):
            ctx.event("step", index=index, step=step.kind.value)
        following = STEP_HANDLERS[step.kind](ctx, step, index)
        plan.step_index, plan.next_step_at = following.step_index, following.at
        if following.at is None or following.at > now:
            return plan
        index = following.step_index
    return plan


def live_asks_at(notifications: list[Notification], index: int) -> list[Notification]:
    """Asks at step ``index`` that may still reach someone (not failed)."""
    return [
        n
        for n in notifications
        if n.step_index == index
        and n.purpose in ASKING_PURPOSES
        and n.status != NotificationStatus.failed
    ]
