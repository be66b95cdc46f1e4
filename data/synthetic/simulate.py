"""Run the simulation: personas → painted days → meter readings and TV events, per household."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from data.synthetic.meter import half_hour_kwh, minute_power_w
from data.synthetic.personas import (
    STREAM_DAYS,
    STREAM_WEATHER,
    Persona,
    draw_personas,
    stream_rng,
)
from data.synthetic.roster import make_roster
from data.synthetic.schedule import HouseArrays, Timeline, make_timeline, paint_day
from data.synthetic.tv import tv_session_events

DEFAULT_TIMEZONE = "Asia/Tokyo"
READING_COLUMNS = ["household_id", "timestamp", "kwh"]
TV_COLUMNS = ["household_id", "timestamp", "event", "channel"]


def local_start(start: datetime | pd.Timestamp | str, timezone: str) -> pd.Timestamp:
    """``start`` as an aware timestamp in ``timezone``; a naive ``start`` means local time."""
    ts = pd.Timestamp(start)
    return ts.tz_localize(timezone) if ts.tzinfo is None else ts.tz_convert(timezone)


def town_weather(seed: int, days: int) -> np.ndarray:
    """Daily temperature anomaly (about °C) shared by the whole town: cold spells last days."""
    rng = stream_rng(seed, STREAM_WEATHER)
    anomaly = np.empty(days)
    value = rng.normal(0, 2)
    for day in range(days):
        anomaly[day] = value
        value = 0.7 * value + rng.normal(0, 2 * np.sqrt(1 - 0.49))
    return anomaly


def simulate_household(
    p: Persona, timeline: Timeline, weather: np.ndarray, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Readings and TV events of one household over ``timeline``."""
    arrays = HouseArrays.empty(timeline.minutes)
    for day, local_date in enumerate(timeline.dates):
        arrays.offset = int(timeline.day_offsets[day])
        paint_day(p, arrays, local_date.weekday(), float(weather[day]), rng)
    tv_on = arrays.tv_want & arrays.home & (arrays.awake | arrays.tv_doze)
    events, tv_on = tv_session_events(tv_on, arrays.awake & arrays.home, p, rng)
    cold = np.clip(1 - 0.08 * weather, 0.6, 1.5)[timeline.day_of_minute]
    kwh = half_hour_kwh(minute_power_w(p, timeline, arrays, tv_on, cold, rng))
    ends = pd.date_range(timeline.start + pd.Timedelta(minutes=30), periods=len(kwh), freq="30min")
    readings = pd.DataFrame({"household_id": p.household_id, "timestamp": ends, "kwh": kwh})
    seconds = pd.to_timedelta([e.second for e in events], unit="s")
    tv = pd.DataFrame(
        {
            "household_id": p.household_id,
            "timestamp": timeline.start + seconds,
            "event": [e.event for e in events],
            "channel": [e.channel for e in events],
        },
        columns=TV_COLUMNS,
    )
    return readings, tv


def simulate_households(
    n: int,
    start: datetime | pd.Timestamp | str,
    days: int,
    seed: int,
    timezone: str = DEFAULT_TIMEZONE,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate ``n`` older residents living alone for ``days`` local days from ``start``.

    Parameters
    ----------
    n : int
        Number of households, named ``H001`` … .
    start : datetime, Timestamp or str
        A local midnight; naive values are read in ``timezone``.
    days : int
        Length of the period in local days.
    seed : int
        Everything is a function of ``seed``; household ``k`` does not depend on ``n``.
    timezone : str
        IANA zone of the town (stamps carry its offset).

    Returns
    -------
    readings, tv, households, contacts : DataFrame
        ``readings``: ``household_id, timestamp, kwh`` with ``timestamp`` the aware local END of
        each 30-minute interval. ``tv``: ``household_id, timestamp, event, channel``.
        ``households`` and ``contacts``: the roster (see ``data.synthetic.roster``).

    Examples
    --------
    >>> readings, tv, households, contacts = simulate_households(2, "2025-01-06", 1, seed=3)
    >>> len(readings), readings["timestamp"].iloc[0].isoformat()
    (96, '2025-01-06T00:30:00+09:00')
    """
    timeline = make_timeline(local_start(start, timezone), days)
    weather = town_weather(seed, days)
    personas = draw_personas(n, seed)
    readings, tvs = [], []
    for index, persona in enumerate(personas):
        rng = stream_rng(seed, STREAM_DAYS, index)
        household_readings, household_tv = simulate_household(persona, timeline, weather, rng)
        readings.append(household_readings)
        tvs.append(household_tv)
    households, contacts = make_roster(personas, seed, timezone)
    return (
        pd.concat(readings, ignore_index=True),
        pd.concat(tvs, ignore_index=True),
        households,
        contacts,
    )
