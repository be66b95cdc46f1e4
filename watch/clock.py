"""Where every "now" comes from.

Nothing in AreaWatch calls ``datetime.now()`` directly: the application asks a clock and hands
``now`` down. Tests and replays use ``FrozenClock`` so months of data, or a 30-minute escalation
timeout, run in seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that moves only when told to.

    >>> clock = FrozenClock(datetime(2025, 1, 6, 7, 30, tzinfo=UTC))
    >>> clock.advance(timedelta(minutes=30)).isoformat()
    '2025-01-06T08:00:00+00:00'
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self._now = when.astimezone(UTC)
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now = self._now + delta
        return self._now
