"""What the engine checks before each step of an inactivity incident: is it silenced or inhibited?

A held incident stays open and keeps its place in the chain; no step runs and nothing is sent.
Its ``next_step_at`` moves to the next re-check (the silence's end, or ``HOLD_RECHECK`` from now,
whichever is sooner: a silence can end early and an area can recover at any time). The timeline
gets one event when a hold starts (``silenced`` or ``inhibited``) and one when it lifts
(``resumed``), not one per re-check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from data.tables.incidents import Incident, IncidentEvent
from data.tables.roster import Household
from notify.inhibition import area_inhibited
from notify.silences import active_silences, silence_end

INACTIVITY = "inactivity"
HOLD_RECHECK = timedelta(minutes=15)
SILENCED = "silenced"
INHIBITED = "inhibited"
RESUMED = "resumed"
HOLD_KINDS = (SILENCED, INHIBITED)


@dataclass(frozen=True, slots=True)
class Hold:
    kind: str  # silenced | inhibited
    until: datetime
    detail: dict[str, Any] = field(default_factory=dict)


def hold_for(
    session: Session, incident: Incident, household: Household, now: datetime
) -> Hold | None:
    """Why this incident's step must not run at ``now``, or None. Only inactivity is held."""
    if incident.kind != INACTIVITY:
        return None
    silences = active_silences(session, household.id, now)
    if silences:
        until = min(max(silence_end(s) for s in silences), now + HOLD_RECHECK)
        first = silences[0]
        return Hold(SILENCED, until, {"silence_id": first.id, "reason": first.reason})
    if area_inhibited(session, household.area, now):
        return Hold(
            INHIBITED, now + HOLD_RECHECK, {"reason": "area outage", "area": household.area}
        )
    return None


def last_hold_event(session: Session, incident_id: int) -> str | None:
    """The latest of ``silenced``/``inhibited``/``resumed`` on the incident: is it held now?"""
    return session.exec(
        select(IncidentEvent.kind)
        .where(
            IncidentEvent.incident_id == incident_id,
            col(IncidentEvent.kind).in_((*HOLD_KINDS, RESUMED)),
        )
        .order_by(col(IncidentEvent.id).desc())
    ).first()
