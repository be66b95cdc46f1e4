"""Incidents and their escalation, healthchecks-style.

An incident stores few states (``open``, ``acknowledged``, ``claimed``, ``resolved``); only
``open`` escalates. The passing ones ("waiting for family") are derived from the frozen policy,
``step_index`` and ``next_step_at`` against ``now``. ``next_step_at`` is the indexed "due at"
column the escalation sweeper scans. Every change writes an ``IncidentEvent`` row: the audit
trail and the timeline staff read. ``Notification`` is the outbox: a message is written before it
is sent, and sent once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class IncidentStatus(StrEnum):
    open = "open"
    # Someone (family, staff) has taken it in hand: the chain stops, nobody is on the way yet.
    acknowledged = "acknowledged"
    # Someone is going there (a volunteer said "1").
    claimed = "claimed"
    resolved = "resolved"


class Incident(SQLModel, table=True):
    __table_args__ = (
        # One open incident per household and kind: dedupe enforced by the database itself.
        Index(
            "uq_incident_open_household_kind",
            "household_id",
            "kind",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
        # An operator incident about a data source (``source_stale``): one open per source too.
        Index(
            "uq_incident_open_source_kind",
            "source",
            "kind",
            unique=True,
            sqlite_where=text("status != 'resolved'"),
            postgresql_where=text("status != 'resolved'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # A household's incident; None for an incident about a data source (then ``source`` is set).
    household_id: str | None = Field(
        default=None, foreign_key="household.id", index=True, max_length=64
    )
    source: str | None = Field(default=None, index=True, max_length=64)
    kind: str = Field(max_length=16)  # inactivity | outage | source_stale
    severity: str = Field(max_length=16)
    status: IncidentStatus = Field(default=IncidentStatus.open, index=True)
    reason: str = Field(max_length=400)
    score: float = 0.0
    opened_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    policy_snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    # The current step of the frozen policy; past the end, a final repeat_staff counts its rounds.
    step_index: int = 0
    next_step_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), index=True))
    claimed_by_contact_id: int | None = Field(default=None, foreign_key="contact.id")
    resolved_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = Field(default=None, max_length=32)
    # Bumped on every guarded update: a writer that read version N only wins if it is still N.
    version: int = 0


class IncidentEvent(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    kind: str = Field(max_length=32)  # opened | step | message | delivery | reply | claimed | ...
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    detail: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class NotificationStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    delivered = "delivered"
    failed = "failed"


class Notification(SQLModel, table=True):
    __table_args__ = (
        # A step asks a contact once per channel: re-running a crashed step cannot write a second
        # message. ``topic`` tells apart the two informs ("claimed", "resolved") of one step.
        UniqueConstraint("incident_id", "step_index", "contact_id", "purpose", "topic", "channel"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id", index=True)
    step_index: int
    contact_id: int | None = Field(default=None, foreign_key="contact.id")
    purpose: str = Field(default="ask", max_length=16)  # ask | reminder | inform | alert
    # What it is about: the step kind for asks and reminders, "claimed"/"resolved" for informs.
    topic: str = Field(default="", max_length=24)
    channel: str = Field(max_length=16)
    body: str
    status: NotificationStatus = Field(default=NotificationStatus.pending, index=True)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # The provider's id (Twilio's SM... sid): status callbacks find the row by it.
    provider_id: str | None = Field(default=None, max_length=64, index=True)
    error: str | None = None
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
