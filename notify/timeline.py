"""The incident timeline: every step, message, failure, reply and outcome is an event row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from data.tables.incidents import IncidentEvent


def add_event(
    session: Session,
    incident_id: int,
    kind: str,
    now: datetime,
    contact_id: int | None = None,
    **detail: Any,
) -> None:
    session.add(
        IncidentEvent(
            incident_id=incident_id, at=now, kind=kind, contact_id=contact_id, detail=detail
        )
    )
