"""Turning stored readings and TV events into the 30-minute slots the detectors see.

Readings may come at 1/5/15/30/60-minute intervals. The detectors work on a 30-minute grid in
UTC (which is also a 30-minute grid in every zone AreaWatch serves): finer readings are summed into
their slot, an hourly reading is split evenly across its two slots (the split is flat, so it can
show a change between hours but never within one).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from detectors.base import Interval

SLOT = timedelta(minutes=30)
TV_OPERATIONS = frozenset({"power_on", "channel", "key"})


def floor_slot(when: datetime) -> datetime:
    """The end of the last complete 30-minute slot at or before ``when``.

    >>> floor_slot(datetime(2025, 1, 6, 7, 44, tzinfo=UTC)).isoformat()
    '2025-01-06T07:30:00+00:00'
    """
    when = when.astimezone(UTC)
    return when.replace(minute=(when.minute // 30) * 30, second=0, microsecond=0)


def slot_of(interval_end: datetime) -> datetime:
    """The end of the 30-minute slot that contains a reading ending at ``interval_end``.

    >>> slot_of(datetime(2025, 1, 6, 7, 15, tzinfo=UTC)).isoformat()
    '2025-01-06T07:30:00+00:00'
    >>> slot_of(datetime(2025, 1, 6, 7, 30, tzinfo=UTC)).isoformat()
    '2025-01-06T07:30:00+00:00'
    """
    floored = floor_slot(interval_end)
    return floored if floored == interval_end.astimezone(UTC) else floored + SLOT


def energy_by_slot(
    readings: Iterable[tuple[datetime, float, int]], after: datetime
) -> dict[int, float]:
    """kWh per slot, keyed by the slot's number after ``after`` (1: the slot ending at
    ``after + 30 min``; ``after`` is on the grid); readings are ``(end, kwh, minutes)``.

    Finer readings are summed into their slot in the order they come; an hourly one is split
    evenly over its two slots. Slot numbers are counted on UTC seconds, not datetimes: this runs
    for every reading of every household.

    >>> t = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    >>> energy_by_slot([(t + timedelta(minutes=15), 0.1, 15), (t + SLOT, 0.2, 15),
    ...                 (t + 2 * SLOT + SLOT, 0.6, 60)], after=t)
    {1: 0.30000000000000004, 3: 0.3, 2: 0.3}
    """
    width = SLOT.total_seconds()
    base = after.timestamp()
    energy: dict[int, float] = {}
    for end, kwh, minutes in readings:
        last = math.ceil((end.timestamp() - base) / width)  # the slot holding the reading's end
        parts = minutes // 30 if minutes > 30 else 1
        for k in range(parts):
            energy[last - k] = energy.get(last - k, 0.0) + (kwh / parts if parts > 1 else kwh)
    return energy


@dataclass
class TvState:
    """Whether the set is on, carried from one detection run to the next.

    ``on_since`` is the time from which on-minutes have not yet been counted (not the session
    start): after each slot it moves to the slot end.
    """

    on_since: datetime | None = None


def build_slots(
    *,
    after: datetime,
    until: datetime,
    readings: Iterable[tuple[datetime, float, int]],
    tv_events: Iterable[tuple[datetime, str]],
    tv_state: TvState,
) -> list[Interval]:
    """Slots ending in ``(after, until]``, with ``kwh=None`` where no reading arrived.

    ``readings`` are ``(interval_end, kwh, interval_minutes)``; ``tv_events`` are ``(at, event)``
    in time order. ``tv_state`` is updated in place so the next run continues from it.
    """
    energy = energy_by_slot(readings, after)

    operations: dict[datetime, int] = {}
    on_minutes: dict[datetime, float] = {}
    events = sorted(tv_events)
    slots: list[Interval] = []
    end = after + SLOT
    index = 0
    number = 1  # of the slot ending at ``end``, as ``energy`` counts them
    while end <= until:
        start = end - SLOT
        while index < len(events) and events[index][0] <= end:
            at, event = events[index]
            index += 1
            if at <= start:
                continue  # belongs to a slot already scored
            if event in TV_OPERATIONS:
                operations[end] = operations.get(end, 0) + 1
            if event == "power_on" and tv_state.on_since is None:
                _add_on_minutes(on_minutes, tv_state, end, until_time=at)
                tv_state.on_since = at
            elif event == "power_off" and tv_state.on_since is not None:
                _add_on_minutes(on_minutes, tv_state, end, until_time=at)
                tv_state.on_since = None
        if tv_state.on_since is not None:
            _add_on_minutes(on_minutes, tv_state, end, until_time=end)
            tv_state.on_since = end
        slots.append(
            Interval(
                end=end,
                kwh=round(energy[number], 6) if number in energy else None,
                minutes=30,
                tv_operations=operations.get(end, 0),
                tv_on_minutes=on_minutes.get(end, 0.0),
            )
        )
        end += SLOT
        number += 1
    return slots


def _add_on_minutes(on_minutes: dict, tv_state: TvState, slot_end: datetime, until_time) -> None:
    if tv_state.on_since is None:
        return
    start = max(tv_state.on_since, slot_end - SLOT)
    minutes = max(0.0, (until_time - start).total_seconds() / 60)
    on_minutes[slot_end] = on_minutes.get(slot_end, 0.0) + minutes
