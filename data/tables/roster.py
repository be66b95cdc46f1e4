"""Who is watched and who is asked: organisations, households and their contacts."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class ContactRole(StrEnum):
    resident = "resident"
    family = "family"
    volunteer = "volunteer"
    staff = "staff"


class Organisation(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    monthly_sms_budget: int | None = None


class Household(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(default="default", foreign_key="organisation.id", index=True)
    name: str = Field(max_length=200)
    area: str = Field(default="", index=True, max_length=100)
    address: str = Field(default="", max_length=400)
    lat: float | None = None
    lon: float | None = None
    timezone: str = Field(default="Asia/Tokyo", max_length=64)
    policy: str = Field(default="default", max_length=64)
    # The interval ingest gave this household's latest readings (None: the 30-minute default).
    # Kept here so a file with one reading a household, every 30-minute tick, needs no probe of
    # ``reading`` to know it (``data.ingest.readings``).
    reading_interval_minutes: int | None = None


class Contact(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("household_id", "role", "phone"),)

    id: int | None = Field(default=None, primary_key=True)
    household_id: str = Field(foreign_key="household.id", index=True, max_length=64)
    name: str = Field(max_length=200)
    role: ContactRole
    phone: str = Field(max_length=20, index=True)
    # For the ``email`` channel; a contact without one is skipped on that channel only.
    email: str | None = Field(default=None, max_length=254)
    language: str = Field(default="ja", max_length=2)
    quiet_start: time | None = None
    quiet_end: time | None = None
    priority: int = 1
    # Set when a number proved invalid (Twilio 21211): we stop using it and tell staff.
    disabled_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    disabled_reason: str | None = None
