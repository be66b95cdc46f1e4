"""Detector state between runs, and what the detectors found."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class DetectorCheckpoint(SQLModel, table=True):
    """A pickled detector for one household, and the time up to which it has seen the data."""

    household_id: str = Field(foreign_key="household.id", primary_key=True, max_length=64)
    detector: str = Field(primary_key=True, max_length=64)
    state: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    scored_until: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Finding(SQLModel, table=True):
    """One detector verdict worth keeping: a watch, alert, outage or review flag."""

    __table_args__ = (Index("ix_finding_household_fired", "household_id", "fired_at"),)

    id: int | None = Field(default=None, primary_key=True)
    household_id: str = Field(foreign_key="household.id", max_length=64)
    kind: str = Field(max_length=16)  # inactivity | outage | review
    severity: str = Field(max_length=16)  # watch | alert
    score: float
    reason: str = Field(max_length=400)
    fired_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # The start of the quiet stretch (or outage) it is about: one finding per stretch and severity.
    since: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
