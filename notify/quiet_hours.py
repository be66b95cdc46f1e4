"""Per-contact quiet hours, read in the household's time zone (the only place local time matters).

A window ``start``-``end`` may cross midnight (22:00-07:00). Equal start and end mean none.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo


def in_quiet_hours(start: time | None, end: time | None, timezone: str, now: datetime) -> bool:
    """Whether ``now`` (aware UTC) falls in the local window ``[start, end)``.

    >>> from datetime import UTC
    >>> night = (time(22, 0), time(7, 0))
    >>> in_quiet_hours(*night, "Asia/Tokyo", datetime(2025, 1, 5, 14, 0, tzinfo=UTC))  # 23:00
    True
    >>> in_quiet_hours(*night, "Asia/Tokyo", datetime(2025, 1, 6, 0, 0, tzinfo=UTC))  # 09:00
    False
    """
    if start is None or end is None or start == end:
        return False
    local = now.astimezone(ZoneInfo(timezone)).time().replace(tzinfo=None)
    if start < end:
        return start <= local < end
    return local >= start or local < end
