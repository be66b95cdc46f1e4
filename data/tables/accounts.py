"""Who may use the dashboard, and who looked at whom.

A staff user belongs to one organisation and only ever sees that organisation's households.
``ViewAudit`` records every household or incident page a user opened: residents' data is
personal, and the welfare office must be able to say who read it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class StaffRole(StrEnum):
    admin = "admin"  # acts, and sees contacts' full phone numbers
    staff = "staff"  # acts; phones masked
    viewer = "viewer"  # reads only


class StaffUser(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    organisation_id: str = Field(foreign_key="organisation.id", index=True, max_length=64)
    username: str = Field(unique=True, max_length=100)
    password_hash: str = Field(max_length=200)
    role: StaffRole = Field(default=StaffRole.staff)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ViewAudit(SQLModel, table=True):
    __table_args__ = (Index("ix_viewaudit_household_at", "household_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="staffuser.id", index=True)
    household_id: str = Field(foreign_key="household.id", max_length=64)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    what: str = Field(max_length=32)  # household | incident | household_api | incident_api
