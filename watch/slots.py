"""Turning stored readings and TV events into the 30-minute slots the detectors see.

Readings may come at 1/5/15/30/60-minute intervals. The detectors work on a 30-minute grid in
UTC (which is also a 30-minute grid in every zone AreaWatch serves): finer readings are summed into
their slot, an hourly reading is split evenly across its two slots (the split is flat, so it can
show a change between hours but never within one).
"""

from __future__ import annotations

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
    energy: dict[datetime, float] = {}
    for end, kwh, minutes in readings:
        if minutes > 30:
            parts = minutes // 30
            for k in range(parts):
                slot = slot_of(end - k * SLOT)
                energy[slot] = energy.get(slot, 0.0) + kwh / parts
        else:
            slot = slot_of(end)
            energy[slot] = energy.get(slot, 0.0) + kwh

    operations: dict[datetime, int] = {}
    on_minutes: dict[datetime, float] = {}
    events = sorted(tv_events)
    slots: list[Interval] = []
    end = after + SLOT
    index = 0
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
                kwh=round(energy[end], 6) if end in energy else None,
                minutes=30,
                tv_operations=operations.get(end, 0),
                tv_on_minutes=on_minutes.get(end, 0.0),
            )
        )
        end += SLOT
    return slots


def _add_on_minutes(on_minutes: dict, tv_state: TvState, slot_end: datetime, until_time) -> None:
    if tv_state.on_since is None:
        return
    start = max(tv_state.on_since, slot_end - SLOT)
    minutes = max(0.0, (until_time - start).total_seconds() / 60)
    on_minutes[slot_end] = on_minutes.get(slot_end, 0.0) + minutes
