"""Running the service: where each source's pulls stand, and who holds the scheduler."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from data.types import UTCDateTime


class SourceCursor(SQLModel, table=True):
    """How far a source has been pulled, and how its last pulls went (for ``areawatch status``).

    ``cursor`` is the source's own position (a drop folder: the last file it processed).
    """

    source: str = Field(primary_key=True, max_length=64)
    cursor: str | None = Field(default=None, max_length=400)
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    last_error: str | None = Field(default=None, max_length=400)
    last_error_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    # When the staleness check first saw the source: a source that never succeeded is stale
    # counted from here.
    first_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class SchedulerLease(SQLModel, table=True):
    """One running scheduler per database: the holder heartbeats; a stale lease may be taken."""

    name: str = Field(primary_key=True, max_length=64)
    # Empty when released; otherwise "host:pid:token" of the process that runs the jobs.
    holder: str | None = Field(default=None, max_length=200)
    acquired_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    heartbeat_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
