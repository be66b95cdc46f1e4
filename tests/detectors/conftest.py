"""A synthetic resident for the detector tests: a daily routine in local time, seeded.

The resident sleeps about 22:30-06:30 (standby about 0.05 kWh per half-hour with fridge noise),
has a morning routine (kettle, cooking), sporadic use in the day (and some days goes out), cooks
in the early evening and watches TV until bed. A collapse can be injected: from then on the home
sits at standby plus noise, optionally with a lamp left on (+0.05 kWh flat) or the TV left on
with nobody pressing a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.base import Interval

HALF_HOUR = timedelta(minutes=30)


@dataclass(frozen=True)
class Collapse:
    """An injected incident: from ``at`` (until ``until``, if given) the resident does nothing."""

    at: datetime
    lamp_left_on: bool = False
    tv_left_on: bool = False
    until: datetime | None = None

    def covers(self, end: datetime) -> bool:
        return end > self.at and (self.until is None or end <= self.until)


@dataclass
class HouseholdStream:
    """The intervals of one synthetic home, and which of them fall after a collapse."""

    intervals: list[Interval]
    collapsed: np.ndarray
    collapse: Collapse | None
    timezone: str


def household_stream(
    *,
    seed: int,
    days: int,
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC),
    timezone: str = "Asia/Tokyo",
    collapse: Collapse | None = None,
    missing: list[tuple[datetime, datetime]] = (),
    wake_hour: float = 6.5,
    bed_hour: float = 22.5,
    outing_probability: float = 0.3,
) -> HouseholdStream:
    """Generate ``days`` of half-hourly intervals for one resident (``seed`` fixes everything).

    ``missing`` lists [from, to) windows where no reading arrives (``kwh=None``).
    """
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(timezone)
    standby = rng.uniform(0.04, 0.07)
    # One routine per local day, drawn up front so a collapse changes nothing before it.
    first_day = start.astimezone(zone).date() - timedelta(days=1)
    routine = {}
    for offset in range(days + 2):
        outing = None
        if rng.random() < outing_probability:
            leave = rng.uniform(9.5, 14.0)
            outing = (leave, leave + rng.uniform(1.5, 4.5))
        routine[first_day + timedelta(days=offset)] = (
            wake_hour + rng.normal(0, 0.35),
            bed_hour + rng.normal(0, 0.4),
            outing,
            rng.uniform(0.5, 5.0) if rng.random() < 0.35 else None,  # a toilet trip at night
        )
    intervals: list[Interval] = []
    collapsed = np.zeros(days * 48, dtype=bool)
    tv_on = False
    for i in range(days * 48):
        end = start + HALF_HOUR * (i + 1)
        local = (end - HALF_HOUR / 2).astimezone(zone)
        hour = local.hour + local.minute / 60
        wake, bed, outing, night_trip = routine[local.date()]
        kwh = standby + rng.normal(0, 0.004) + (0.01 if rng.random() < 0.25 else 0.0)  # fridge
        operations = 0
        if collapse is not None and collapse.covers(end):
            collapsed[i] = True
            kwh += 0.05 if collapse.lamp_left_on else 0.0
            tv_on = tv_on and collapse.tv_left_on
            kwh += 0.05 if tv_on else 0.0
        else:
            away = outing is not None and outing[0] <= hour < outing[1]
            asleep = hour < wake or hour >= bed
            if asleep:
                tv_on = False
                if night_trip is not None and abs(hour - night_trip) < 0.25:
                    kwh += rng.uniform(0.03, 0.08)
            elif away:
                tv_on = False
            elif hour < wake + 1.5 or 17.5 <= hour < 19.0:
                kwh += rng.uniform(0.05, 0.35) if rng.random() < 0.85 else 0.0
            elif hour >= 19.0:
                if not tv_on:
                    tv_on, operations = True, 1
                operations += int(rng.poisson(0.6))
                kwh += 0.05 + (rng.uniform(0.02, 0.2) if rng.random() < 0.3 else 0.0)
            elif rng.random() < 0.45:
                kwh += rng.uniform(0.03, 0.4)
        if any(a <= end - HALF_HOUR < b for a, b in missing):
            intervals.append(Interval(end, None))
            continue
        intervals.append(
            Interval(
                end,
                round(max(kwh, 0.0), 3),
                tv_operations=operations,
                tv_on_minutes=30.0 if tv_on else 0.0,
            )
        )
    return HouseholdStream(intervals, collapsed, collapse, timezone)


@pytest.fixture
def make_household_stream() -> Callable[..., HouseholdStream]:
    """Factory fixture: ``make_household_stream(seed=1, days=14, collapse=...)``."""
    return household_stream
