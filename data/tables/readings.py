"""What arrives: meter readings, TV events, and the record of every ingest and every bad row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class Reading(SQLModel, table=True):
    """Energy used in one interval, keyed by household and the interval's END (UTC)."""

    # No foreign key to household, on purpose: on PostgreSQL the per-row check cost more than
    # the insert itself, so the partitioned table never had one (migration 0004), and SQLite
    # dropped its copy (0005) so both databases accept and refuse the same rows. Ingest is the
    # guard: a reading of a household not in the roster is quarantined, never stored.
    household_id: str = Field(primary_key=True, max_length=64)
    interval_end: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    kwh: float
    interval_minutes: int = 30
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ReadingCorrection(SQLModel, table=True):
    """A re-sent reading whose value differed: the new value replaced the old, and we keep both."""

    id: int | None = Field(default=None, primary_key=True)
    household_id: str = Field(index=True, max_length=64)
    interval_end: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    old_kwh: float
    new_kwh: float
    ingest_id: int | None = Field(default=None, foreign_key="ingest.id")
    corrected_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class TvEvent(SQLModel, table=True):
    household_id: str = Field(foreign_key="household.id", primary_key=True, max_length=64)
    at: datetime = Field(sa_column=Column(UTCDateTime(), primary_key=True))
    event: str = Field(primary_key=True, max_length=16)  # power_on | power_off | channel | key
    channel: str | None = Field(default=None, max_length=32)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class Ingest(SQLModel, table=True):
    """One run of one file through ingestion: what it read, loaded, changed and quarantined."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16)  # readings | tv | households | contacts
    source: str = Field(max_length=400)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    rows_read: int = 0
    rows_inserted: int = 0
    rows_unchanged: int = 0
    rows_corrected: int = 0
    rows_quarantined: int = 0


class QuarantinedRow(SQLModel, table=True):
    __table_args__ = (Index("ix_quarantinedrow_ingest_line", "ingest_id", "line_number"),)

    id: int | None = Field(default=None, primary_key=True)
    ingest_id: int = Field(foreign_key="ingest.id")
    line_number: int
    raw: str
    reason: str = Field(max_length=400)
