"""Escalation policies as loaded by an organisation: the validated definition, kept as data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class EscalationPolicy(SQLModel, table=True):
    """One named policy of one organisation. Incidents freeze a copy when they open, so
    reloading a policy changes only incidents opened afterwards."""

    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    organisation_id: str = Field(foreign_key="organisation.id", index=True, max_length=64)
    name: str = Field(max_length=64)
    definition: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    source: str = Field(default="", max_length=400)
    loaded_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
