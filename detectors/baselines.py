"""A generic streaming anomaly detector as a comparison: river's Half-Space Trees.

It sees each interval alone (local time of day and usage), with no notion of a quiet stretch,
so it shows what a general-purpose detector gives on this problem in the backtest.
"""

from __future__ import annotations

import math
from collections import deque
from zoneinfo import ZoneInfo

from river import anomaly

from detectors.base import Detector, Interval


class HalfSpaceTreesBaseline(Detector):
    """river's ``anomaly.HalfSpaceTrees`` on (time of day as sin/cos, usage), seeded.

    Features are scaled into [0, 1]: ``(sin + 1) / 2`` and ``(cos + 1) / 2`` of the local time of
    day, ``min(kwh / kwh_scale, 1)`` and the same for the mean usage of the last 3 hours (a single
    standby half-hour is common; three quiet hours at a busy time of day are not). Scores are in
    [0, 1]. An interval with no reading scores 0.0 and is not learned. Only intervals scored below
    ``alert_threshold`` are learned (river's ``protect_anomaly_detector``). The reference window
    is three weeks (``window_size=1008``): with a shorter one the daily pattern is not learned
    and a collapse scores below chance.

    Reference: Tan, Ting and Liu (2011), "Fast anomaly detection for streaming data", IJCAI.

    Notes
    -----
    Known limit: a collapse leaves usage at standby, which is not rare in itself (nights, outings),
    so this detector is weak at the very thing we need; it is a comparison, not a candidate.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> model = HalfSpaceTreesBaseline(seed=42)
    >>> x = Interval(datetime(2025, 1, 6, 1, 0, tzinfo=UTC), 0.3)
    >>> 0.0 <= model.score_one(x) <= 1.0
    True
    """

    def __init__(
        self,
        timezone: str = "Asia/Tokyo",
        kwh_scale: float = 1.0,
        n_trees: int = 10,
        height: int = 8,
        window_size: int = 1008,
        seed: int = 42,
        watch_threshold: float = 0.8,
        alert_threshold: float = 0.9,
    ) -> None:
        self.timezone = timezone
        self.kwh_scale = kwh_scale
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.watch_threshold = watch_threshold
        self.alert_threshold = alert_threshold

    def _model(self) -> anomaly.HalfSpaceTrees:
        if not hasattr(self, "_trees"):
            self._trees = anomaly.HalfSpaceTrees(
                n_trees=self.n_trees,
                height=self.height,
                window_size=self.window_size,
                seed=self.seed,
            )
        return self._trees

    def _recent(self) -> deque[float]:
        if not hasattr(self, "_recent_kwh"):
            self._recent_kwh: deque[float] = deque(maxlen=5)
        return self._recent_kwh

    def _scaled(self, kwh: float) -> float:
        return min(max(kwh, 0.0) / self.kwh_scale, 1.0)

    def _features(self, x: Interval) -> dict[str, float]:
        local = x.end.astimezone(ZoneInfo(self.timezone))
        angle = 2 * math.pi * (local.hour * 60 + local.minute) / 1440
        kwh = float(x.kwh or 0.0)
        recent = self._recent()
        return {
            "time_sin": (math.sin(angle) + 1) / 2,
            "time_cos": (math.cos(angle) + 1) / 2,
            "kwh": self._scaled(kwh),
            "kwh_3h": self._scaled((sum(recent) + kwh) / (len(recent) + 1)),
        }

    def score_one(self, x: Interval) -> float:
        if x.kwh is None:
            return 0.0
        return float(self._model().score_one(self._features(x)))

    def learn_one(self, x: Interval) -> None:
        if x.kwh is None:
            return
        if self.score_one(x) < self.alert_threshold:
            self._model().learn_one(self._features(x))
        self._recent().append(float(x.kwh))
