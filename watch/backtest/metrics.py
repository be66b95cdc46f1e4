"""Scoring a backtest against labelled incident onsets: recall, delay, false-alert episodes.

Definitions (also in ``docs/detection.md``):

- An incident is *detected* by the first ``inactivity`` alert of severity ``alert`` of its
  household fired in ``[onset, onset + window]`` (48 h); its delay is ``fired_at - onset``. A
  missed incident has an infinite delay, so the median and p90 are infinite (``None`` in JSON)
  once fewer than half (a tenth) of the incidents are detected in the window.
- Percentiles are nearest-rank (no interpolation, so they are always a measured delay).
- *Night* onsets are those at 22:00-06:00 local time of the household, the rest are *day*.
- A *false alert* is an ``alert`` that is not in ``[onset, onset + window]`` of a label of its
  household, fired after the warm-up (the history the detector is given first). False alerts
  are grouped into *episodes*, at most one per household per 24 h (greedy: an alert starts a new
  episode 24 h or more after the start of the previous one). The rate is per household-month of
  30 days of time at risk: each household's replayed span after the warm-up, less its labelled
  windows.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

HORIZONS_HOURS = (3, 6, 12, 24)
WINDOW = timedelta(hours=48)
EPISODE = timedelta(hours=24)
MONTH = timedelta(days=30)
NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5})


@dataclass(frozen=True)
class Label:
    household_id: str
    onset: datetime
    variant: str | None = None


@dataclass(frozen=True)
class Span:
    """The replayed time of one household: its first and last tick, and its zone."""

    household_id: str
    start: datetime
    end: datetime
    timezone: str = "Asia/Tokyo"


@dataclass(frozen=True)
class DelaySummary:
    incidents: int
    recall: dict[int, float]  # horizon hours -> fraction detected within it
    median_delay_hours: float  # inf when more than half are missed
    p90_delay_hours: float

    def as_json(self) -> dict:
        return {
            "incidents": self.incidents,
            "recall": {f"{h}h": _finite(r) for h, r in self.recall.items()},
            "median_delay_hours": _finite(self.median_delay_hours),
            "p90_delay_hours": _finite(self.p90_delay_hours),
        }


@dataclass(frozen=True)
class Metrics:
    overall: DelaySummary
    day: DelaySummary
    night: DelaySummary
    by_variant: dict[str, DelaySummary]
    false_alert_episodes: int
    household_months: float
    false_episodes_per_household_month: float
    delays_hours: tuple[float, ...]

    def as_json(self) -> dict:
        return {
            "overall": self.overall.as_json(),
            "day": self.day.as_json(),
            "night": self.night.as_json(),
            "by_variant": {k: v.as_json() for k, v in sorted(self.by_variant.items())},
            "false_alert_episodes": self.false_alert_episodes,
            "household_months": round(self.household_months, 3),
            "false_episodes_per_household_month": _finite(self.false_episodes_per_household_month),
        }


def _finite(value: float) -> float | None:
    return None if math.isinf(value) or math.isnan(value) else round(float(value), 4)


def nearest_rank(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (``inf`` values allowed; ``nan`` when empty).

    >>> nearest_rank([1.0, 2.0, 3.0, float("inf")], 0.5)
    2.0
    >>> nearest_rank([1.0, float("inf"), float("inf")], 0.9)
    inf
    """
    if len(values) == 0:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def summarise_delays(delays: Sequence[float]) -> DelaySummary:
    array = np.asarray(delays, dtype=float)
    recall = {h: float(np.mean(array <= h)) if len(array) else float("nan") for h in HORIZONS_HOURS}
    return DelaySummary(len(array), recall, nearest_rank(delays, 0.5), nearest_rank(delays, 0.9))


def is_night(onset: datetime, timezone: str) -> bool:
    return onset.astimezone(ZoneInfo(timezone)).hour in NIGHT_HOURS


def episodes(times: Iterable[datetime], gap: timedelta = EPISODE) -> int:
    """How many episodes ``times`` (one household) make: one per ``gap`` at most, greedily.

    >>> from datetime import UTC
    >>> t = datetime(2025, 1, 6, tzinfo=UTC)
    >>> episodes([t, t + timedelta(hours=23), t + timedelta(hours=24), t + timedelta(hours=30)])
    2
    """
    count, opened = 0, None
    for when in sorted(times):
        if opened is None or when - opened >= gap:
            count, opened = count + 1, when
    return count


def household_months(
    spans: Iterable[Span], labels: Iterable[Label], warmup: timedelta, window: timedelta = WINDOW
) -> float:
    """Time at risk of a false alert, in 30-day months (see the module docstring)."""
    by_household = _labels_by_household(labels)
    total = timedelta(0)
    for span in spans:
        start = span.start + warmup
        if span.end <= start:
            continue
        at_risk = span.end - start
        for label in by_household.get(span.household_id, []):
            overlap = min(span.end, label.onset + window) - max(start, label.onset)
            at_risk -= max(overlap, timedelta(0))
        total += max(at_risk, timedelta(0))
    return total / MONTH


def _labels_by_household(labels: Iterable[Label]) -> dict[str, list[Label]]:
    grouped: dict[str, list[Label]] = defaultdict(list)
    for label in labels:
        grouped[label.household_id].append(label)
    return grouped


def evaluate(
    alert_times: Mapping[str, Sequence[datetime]],
    labels: Sequence[Label],
    spans: Sequence[Span],
    *,
    warmup: timedelta,
    window: timedelta = WINDOW,
) -> Metrics:
    """Metrics from the times of ``alert``-severity inactivity alerts, per household."""
    timezones = {s.household_id: s.timezone for s in spans}
    starts = {s.household_id: s.start for s in spans}
    by_household = _labels_by_household(labels)
    delays: list[float] = []
    day, night = [], []
    by_variant: dict[str, list[float]] = defaultdict(list)
    for label in labels:
        fired = sorted(alert_times.get(label.household_id, []))
        hits = [t for t in fired if label.onset <= t <= label.onset + window]
        delay = (hits[0] - label.onset) / timedelta(hours=1) if hits else float("inf")
        delays.append(delay)
        zone = timezones.get(label.household_id, "UTC")
        (night if is_night(label.onset, zone) else day).append(delay)
        by_variant[label.variant or "unknown"].append(delay)

    false_episodes = 0
    for household_id, times in alert_times.items():
        own = by_household.get(household_id, [])
        start = starts.get(household_id)
        false = [
            t
            for t in times
            if (start is None or t >= start + warmup)
            and not any(lb.onset <= t <= lb.onset + window for lb in own)
        ]
        false_episodes += episodes(false)
    months = household_months(spans, labels, warmup, window)
    return Metrics(
        overall=summarise_delays(delays),
        day=summarise_delays(day),
        night=summarise_delays(night),
        by_variant={k: summarise_delays(v) for k, v in by_variant.items()},
        false_alert_episodes=false_episodes,
        household_months=months,
        false_episodes_per_household_month=false_episodes / months if months else float("nan"),
        delays_hours=tuple(delays),
    )
