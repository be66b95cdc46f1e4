"""The fixed rule services use today: alert after N hours without a sign of activity.

It is the baseline the learned models must beat. It uses the same ``ActivityEvidence`` as
``QuietStretchDetector``, so a comparison measures the model, not what counts as activity.
"""

from __future__ import annotations

from datetime import datetime

from detectors.activity import ActivityEvidence, QuietTracker
from detectors.base import Detector, Interval


class NoActivityRule(Detector):
    """Score = quiet hours / ``hours``; ``alert`` at 1.0 (``hours`` quiet), ``watch`` at 0.5.

    Quiet hours count observed intervals only since the last evidence of a person: a missing
    reading neither extends nor ends the quiet time.

    Parameters
    ----------
    hours
        Quiet hours that make an alert (12 by default; 24 is the other common setting).

    Examples
    --------
    >>> from datetime import UTC, datetime, timedelta
    >>> rule = NoActivityRule(hours=12)
    >>> start = datetime(2025, 1, 6, tzinfo=UTC)
    >>> for i in range(12):
    ...     rule.learn_one(Interval(start + timedelta(minutes=30 * (i + 1)), 0.05))
    >>> rule.score_one(Interval(start + timedelta(hours=6, minutes=30), 0.05))
    0.5416666666666666
    """

    watch_threshold = 0.5
    alert_threshold = 1.0

    def __init__(self, hours: float = 12.0) -> None:
        self.hours = hours

    def _tracker_state(self) -> QuietTracker:
        if not hasattr(self, "_tracker"):
            self._tracker = QuietTracker(ActivityEvidence())
        return self._tracker

    def learn_one(self, x: Interval) -> None:
        self._tracker_state().advance(x)

    def score_one(self, x: Interval) -> float:
        return self._tracker_state().peek(x).quiet_minutes / 60 / self.hours

    def quiet_since(self, x: Interval) -> datetime | None:
        """When the present quiet time began (``None`` if ``x`` shows a person)."""
        return self._tracker_state().peek(x).since

    def explain_one(self, x: Interval) -> str:
        stretch = self._tracker_state().peek(x)
        if stretch.since is None:
            return "activity in the last interval"
        hours = stretch.quiet_minutes / 60
        return f"no activity for {hours:.1f} h (rule: alert after {self.hours:g} h)"
