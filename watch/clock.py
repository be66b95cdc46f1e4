"""Where every "now" comes from.

Nothing in AreaWatch calls ``datetime.now()`` directly: the application asks a clock and hands
``now`` down. Tests and replays use ``FrozenClock`` so months of data, or a 30-minute escalation
timeout, run in seconds.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
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


NOW_ENV = "AREAWATCH_NOW"


class FileClock:
    """The time written (ISO 8601, with offset) in a file, read at every call.

    A test or a replay moves a running process's clock from outside by rewriting the file
    (atomically: write beside it, then rename).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> datetime:
        return _instant(self.path.read_text(encoding="utf-8").strip(), f"{NOW_ENV} file")


def clock_from_environment(environ: Mapping[str, str] | None = None) -> Clock:
    """The system clock, unless ``AREAWATCH_NOW`` fixes the time (tests and replays only).

    ``AREAWATCH_NOW=2025-03-03T01:00:00+09:00`` stops the clock there; ``AREAWATCH_NOW=@FILE``
    reads the time from FILE at every use, so whoever writes FILE moves the clock.

    >>> clock_from_environment({NOW_ENV: "2025-03-03T01:00:00+09:00"}).now().isoformat()
    '2025-03-02T16:00:00+00:00'
    """
    value = (os.environ if environ is None else environ).get(NOW_ENV, "").strip()
    if not value:
        return SystemClock()
    if value.startswith("@"):
        clock: Clock = FileClock(Path(value[1:]))
    else:
        clock = FrozenClock(_instant(value, NOW_ENV))
    logging.getLogger(__name__).warning(
        "the clock is set by %s, not the system clock (tests and replays only)", NOW_ENV
    )
    return clock


def _instant(text: str, where: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{where}: {text!r} is not an ISO 8601 time") from error
    if stamp.tzinfo is None:
        raise ValueError(f"{where}: {text!r} needs a UTC offset")
    return stamp.astimezone(UTC)
