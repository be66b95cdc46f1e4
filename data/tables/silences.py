"""Silences: "in hospital until the 14th" mutes a household's inactivity escalation for a while.

Alertmanager's shape: a silence stores its window and how it ended; whether it is pending,
active or expired is derived from ``now`` (``notify.silences.silence_state``), never stored.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class Silence(SQLModel, table=True):
    __table_args__ = (Index("ix_silence_household_ends", "household_id", "ends_at"),)

    id: int | None = Field(default=None, primary_key=True)
    household_id: str = Field(foreign_key="household.id", max_length=64)
    reason: str = Field(max_length=200)  # "in hospital", "staying with family"
    starts_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    ends_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    created_by: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Set when the silence stopped before ``ends_at`` (activity resumed, or staff ended it).
    ended_early_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    ended_reason: str | None = Field(default=None, max_length=200)
