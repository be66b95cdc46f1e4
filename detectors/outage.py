"""Data arrival, not inactivity: how long since the household's last interval with data.

A meter or a set-top box that stops reporting says nothing about the resident. It opens an
outage incident for operators (never an SMS to family), and the inactivity models treat the
missing intervals as unknown, not as quiet.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from detectors.base import Detector, Interval


class DataOutage(Detector):
    """Score = hours since the end of the last interval that had data (a reading or TV activity).

    ``watch`` at 2 h, ``alert`` (an outage incident for operators) at 6 h by default. Before any
    data, the score is the length of ``x`` if ``x`` itself has no data, else 0.

    Parameters
    ----------
    timezone
        Only for the local clock time in ``explain_one``.

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> outage = DataOutage(timezone="UTC")
    >>> t = datetime(2025, 1, 6, 3, 0, tzinfo=UTC)
    >>> outage.learn_one(Interval(t, 0.05))
    >>> late = Interval(t + timedelta(hours=7), None)
    >>> outage.score_one(late)
    7.0
    >>> outage.explain_one(late)
    'no meter data since 03:00 (7.0 h)'
    >>> outage.silent_since(late).isoformat()
    '2025-01-06T03:00:00+00:00'
    """

    def __init__(
        self,
        timezone: str = "Asia/Tokyo",
        watch_threshold: float = 2.0,
        alert_threshold: float = 6.0,
    ) -> None:
        self.timezone = timezone
        self.watch_threshold = watch_threshold
        self.alert_threshold = alert_threshold

    @staticmethod
    def _has_data(x: Interval) -> bool:
        return x.kwh is not None or x.tv_operations > 0 or x.tv_on_minutes > 0

    def _last_data_after(self, x: Interval) -> datetime:
        if self._has_data(x):
            return x.end
        last = getattr(self, "_last_data", None)
        return last if last is not None else x.end - timedelta(minutes=x.minutes)

    def learn_one(self, x: Interval) -> None:
        self._last_data = self._last_data_after(x)

    def score_one(self, x: Interval) -> float:
        return (x.end - self._last_data_after(x)).total_seconds() / 3600

    def silent_since(self, x: Interval) -> datetime | None:
        """When the present gap in data began (``None`` while data arrives), to key one
        outage incident per gap."""
        last = self._last_data_after(x)
        return None if last == x.end else last

    def explain_one(self, x: Interval) -> str:
        last = self._last_data_after(x)
        if last == x.end:
            return "meter data arriving"
        clock = last.astimezone(ZoneInfo(self.timezone)).strftime("%H:%M")
        return f"no meter data since {clock} ({self.score_one(x):.1f} h)"
