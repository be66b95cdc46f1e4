"""Injecting incidents (and look-alike data events) into readings and TV events.

Variants
--------
``quiet``
    The resident is down from ``onset``: usage falls to the household's own standby baseline
    (resampled from its own quietest readings, so the noise is its fridge's), TV off.
``lamp_on``
    As ``quiet`` plus a flat extra load (a lamp or heater left on), 0.02–0.4 kWh per 30 min.
``tv_left_on``
    The resident's last action is at ``onset`` (switching the TV on, or a key press if it was
    already on); then no operation. The set draws a flat extra load and switches itself off
    ``auto_off_hours`` later (``None``: never).
``meter_outage``
    Not an incident: no readings at all for the span. TV events are untouched (other device).
``away``
    Not an incident: the resident stays with family; standby only, TV off.

Injection works on any readings frame with aware timestamps (interval ends), simulated or real.
Inputs are never modified; new frames are returned.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

import numpy as np
import pandas as pd

INTERVAL = pd.Timedelta(minutes=30)
#: How much of a household's recent history shows its standby level, and which part of it.
BASELINE_HISTORY = pd.Timedelta(days=14)
BASELINE_QUANTILE = 0.2


class Variant(StrEnum):
    quiet = "quiet"
    lamp_on = "lamp_on"
    tv_left_on = "tv_left_on"
    meter_outage = "meter_outage"
    away = "away"

    @property
    def is_incident(self) -> bool:
        """Whether the variant is a person in trouble (labelled) or a data event (not)."""
        return self in (Variant.quiet, Variant.lamp_on, Variant.tv_left_on)


def standby_pool(readings: pd.DataFrame, household_id: str, before: pd.Timestamp) -> np.ndarray:
    """The household's quietest readings of the 14 days before ``before``: its standby level."""
    own = readings[readings["household_id"] == household_id]
    recent = own[(own["timestamp"] <= before) & (own["timestamp"] > before - BASELINE_HISTORY)]
    values = (recent if len(recent) >= 48 else own)["kwh"].to_numpy(float)
    if len(values) == 0:
        raise ValueError(f"no readings for household {household_id!r} to learn a standby level")
    return values[values <= np.quantile(values, BASELINE_QUANTILE)]


def _overlap_fraction(ends: pd.Series, start: pd.Timestamp, stop: pd.Timestamp) -> np.ndarray:
    """Fraction of each 30-minute interval (given by its end) that lies inside [start, stop)."""
    begin = (ends - INTERVAL).clip(lower=start)
    finish = ends.clip(upper=stop)
    return ((finish - begin) / INTERVAL).clip(lower=0, upper=1).to_numpy(float)


def _tv_is_on(events: pd.DataFrame, when: pd.Timestamp) -> bool:
    """Whether the set is on just before ``when`` (its last event is not a power_off)."""
    before = events[events["timestamp"] < when]
    return not before.empty and before["event"].iloc[-1] != "power_off"


def _tv_rows(household_id: str, rows: list[tuple[pd.Timestamp, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "household_id": household_id,
            "timestamp": [t for t, _ in rows],
            "event": [e for _, e in rows],
            "channel": [None] * len(rows),
        }
    )


def _replace_tv_span(
    tv: pd.DataFrame,
    household_id: str,
    start: pd.Timestamp,
    stop: pd.Timestamp | None,
    inserted: list[tuple[pd.Timestamp, str]],
) -> pd.DataFrame:
    """Drop the household's events in [start, stop) and the tail of a session cut at ``stop``.

    ``inserted`` events replace them. After ``stop`` the log resumes at the next power_on, so no
    session appears to continue from nowhere.
    """
    own = tv["household_id"] == household_id
    times = tv["timestamp"]
    drop = own & (times >= start)
    if stop is not None:
        later = tv[own & (times >= stop)]
        resume = later.loc[later["event"] == "power_on", "timestamp"]
        if len(resume):
            drop &= times < resume.iloc[0]
    kept = tv[~drop]
    if not inserted:
        return kept
    return pd.concat([kept, _tv_rows(household_id, inserted).astype(kept.dtypes)])


def inject_incident(
    readings: pd.DataFrame,
    tv: pd.DataFrame,
    household_id: str,
    onset: datetime | pd.Timestamp,
    variant: Variant | str,
    rng: np.random.Generator,
    *,
    duration: timedelta | pd.Timedelta | None = None,
    extra_kwh: float | None = None,
    auto_off_hours: float | None = 4.0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return copies of ``readings`` and ``tv`` with ``variant`` injected at ``onset``.

    Parameters
    ----------
    onset : aware datetime
        When it starts. The 30-minute interval containing it is blended pro rata.
    duration : timedelta, optional
        How long it lasts; ``None`` means to the end of the data.
    extra_kwh : float, optional
        The flat extra load per 30 min of ``lamp_on`` (default drawn from 0.02–0.4) or
        ``tv_left_on`` (default drawn from 0.04–0.07, a TV of 80–140 W).
    auto_off_hours : float or None
        ``tv_left_on`` only: the set switches off this long after the onset, its last operation.
    """
    variant = Variant(variant)
    tz = readings["timestamp"].dt.tz
    start = pd.Timestamp(onset)
    if start.tzinfo is None:
        raise ValueError("onset must be timezone-aware")
    start = start.tz_convert(tz)
    stop = None if duration is None else start + pd.Timedelta(duration)
    span_end = stop if stop is not None else readings["timestamp"].max() + INTERVAL
    own = readings["household_id"] == household_id
    inside = _overlap_fraction(readings["timestamp"], start, span_end) * own.to_numpy()
    if variant is Variant.meter_outage:
        return _sorted(readings[inside == 0]), tv.copy()

    pool = standby_pool(readings, household_id, start)
    touched = inside > 0
    ends = readings.loc[touched, "timestamp"]
    extra = np.zeros(int(touched.sum()))
    if variant is Variant.lamp_on:
        lamp = extra_kwh if extra_kwh is not None else rng.uniform(0.02, 0.4)
        extra = lamp * inside[touched]
    tv_own = tv[tv["household_id"] == household_id].sort_values("timestamp", kind="stable")
    was_on = _tv_is_on(tv_own, start)
    inserted: list[tuple[pd.Timestamp, str]] = []
    if variant is Variant.tv_left_on:
        # The onset is the resident's last action: switching the set on, or a last key press.
        inserted.append((start, "key" if was_on else "power_on"))
        tv_stop = span_end
        if auto_off_hours is not None:
            tv_stop = min(span_end, start + pd.Timedelta(hours=auto_off_hours))
        if tv_stop < span_end or stop is not None:
            inserted.append((tv_stop, "power_off"))
        draw = extra_kwh if extra_kwh is not None else rng.uniform(0.04, 0.07)
        extra = draw * _overlap_fraction(ends, start, tv_stop)
    elif was_on:
        inserted.append((start, "power_off"))

    weight = inside[touched]
    standby = rng.choice(pool, size=len(weight))
    out = readings.copy()
    before = out.loc[touched, "kwh"].to_numpy(float)
    out.loc[touched, "kwh"] = np.round((1 - weight) * before + weight * standby + extra, 3)
    return _sorted(out), _sorted(_replace_tv_span(tv, household_id, start, stop, inserted))


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["household_id", "timestamp"], kind="stable").reset_index(drop=True)
