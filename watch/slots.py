"""Turning stored readings and TV events into the 30-minute slots the detectors see.

Readings may come at 1/5/15/30/60-minute intervals. The detectors work on a 30-minute grid in
UTC (which is also a 30-minute grid in every zone AreaWatch serves): finer readings are summed into
their slot, an hourly reading is split evenly across its two slots (the split is flat, so it can
show a change between hours but never within one).

Readings arrive as columns (``data.new_readings.ReadingColumns``) and are summed into slots by
numpy (``slot_kwh``), for one home or a whole group of homes in one call; ``energy_by_slot`` is
the same sum written one reading at a time, the definition the tests hold ``slot_kwh`` to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from data.new_readings import ReadingColumns, epoch_us
from detectors.base import Interval

SLOT = timedelta(minutes=30)
SLOT_US = 1_800_000_000  # ``SLOT`` in microseconds, as ``ReadingColumns.end_us`` counts
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
    evenly over its two slots. This is the definition, one reading at a time; detection sums
    with ``slot_kwh``, which gives the same floats (the tests hold the two together).

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


def slot_numbers(
    readings: Sequence[ReadingColumns], after_us: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Of every share of a reading (an hourly one has two), the number of its slot counted from
    its own home's ``after`` (``after_us[i]`` for ``readings[i]``, epoch µs on the grid), as
    ``energy_by_slot`` numbers them, and the index of its home; home by home, in arrival order.
    Readings before ``after`` get numbers below 1.

    >>> t = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    >>> homes = [ReadingColumns.from_rows([(t + SLOT, 0.2, 15), (t + 3 * SLOT, 0.6, 60)]),
    ...          ReadingColumns.from_rows([(t + SLOT, 0.1, 30)])]
    >>> numbers, home = slot_numbers(homes, np.array([epoch_us(t), epoch_us(t - SLOT)]))
    >>> numbers.tolist(), home.tolist()
    ([1, 3, 2, 2], [0, 0, 0, 1])
    """
    columns, home = _stacked(readings)
    numbers, _, home = _shares(columns, np.asarray(after_us, dtype=np.int64)[home], home)
    return numbers, home


def slot_kwh(readings: Sequence[ReadingColumns], after: datetime, slots: int) -> np.ndarray:
    """kWh ``[home, slot]`` of the ``slots`` slots after ``after``, one row per home of
    ``readings``: NaN where no reading came, else the home's readings summed into the slot (an
    hourly one split evenly over its two) and rounded to 6 places. Readings before ``after`` or
    past the last slot are left out.

    The sum is ``energy_by_slot``'s, float for float: ``np.bincount`` adds each weight in turn
    to a zero, in the order given, as that loop does, and the shares come home by home in
    arrival order. The rounding is numpy's (``np.round``: scale by 10**6, round half to even,
    scale back), not Python's ``round`` (the correctly rounded decimal; the two can differ by a
    unit in the 6th place when the sum lies within a rounding error of a tie at the 7th): a
    whole matrix is rounded in one call, and the backtest's slots (``watch.backtest.grid``)
    round the same way, so the application, its batch path and the backtest all see the same
    floats. Sums of whole Wh, or of their halves, are nowhere near such a tie: for real meter
    data the two roundings agree.

    >>> t = datetime(2025, 1, 6, 7, 0, tzinfo=UTC)
    >>> home = ReadingColumns.from_rows([(t + timedelta(minutes=15), 0.1, 15),
    ...                                  (t + SLOT, 0.2, 15), (t + 3 * SLOT, 0.6, 60)])
    >>> slot_kwh([home, ReadingColumns.from_rows([])], after=t, slots=4).tolist()
    [[0.3, 0.3, 0.3, nan], [nan, nan, nan, nan]]
    """
    homes = len(readings)
    columns, home = _stacked(readings)
    numbers, energy, home = _shares(columns, epoch_us(after), home)
    inside = (numbers >= 1) & (numbers <= slots)
    if not inside.all():
        numbers, energy, home = numbers[inside], energy[inside], home[inside]
    cell = home * slots + (numbers - 1)
    total = np.bincount(cell, weights=energy, minlength=homes * slots)
    seen = np.bincount(cell, minlength=homes * slots) > 0
    return np.where(seen, np.round(total, 6), np.nan).reshape(homes, slots)


def _stacked(readings: Sequence[ReadingColumns]) -> tuple[ReadingColumns, np.ndarray]:
    """All homes' readings one after another (rows too, as ``build_slots`` takes them), and
    the index of each reading's home."""
    readings = [ReadingColumns.of(r) for r in readings]
    lengths = np.fromiter((len(r) for r in readings), dtype=np.int64, count=len(readings))
    home = np.repeat(np.arange(len(readings)), lengths)
    if len(readings) == 1:
        return readings[0], home
    if not readings:
        return ReadingColumns.from_rows([]), home
    columns = ReadingColumns(
        np.concatenate([r.end_us for r in readings]),
        np.concatenate([r.kwh for r in readings]),
        np.concatenate([r.minutes for r in readings]),
    )
    return columns, home


def _shares(
    columns: ReadingColumns, after_us: int | np.ndarray, home: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slot number, kWh and home of each share of a reading, in ``energy_by_slot``'s order: a
    reading's shares from its last slot back, readings in turn. ``after_us``: one for all, or
    one per reading."""
    # ceil((end - after) / 30 min) on integers: exact at every microsecond.
    last = -((after_us - columns.end_us) // SLOT_US)
    parts = np.where(columns.minutes > 30, columns.minutes // 30, 1)
    if (parts == 1).all():
        return last, columns.kwh, home
    reading = np.repeat(np.arange(len(parts)), parts)
    back = np.arange(len(reading)) - (np.cumsum(parts) - parts)[reading]  # 0 for its last slot
    return last[reading] - back, (columns.kwh / parts)[reading], home[reading]


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

    ``readings`` are ``ReadingColumns`` or ``(interval_end, kwh, interval_minutes)`` rows;
    ``tv_events`` are ``(at, event)`` in time order. ``tv_state`` is updated in place so the
    next run continues from it. A slot's kWh is ``slot_kwh``'s, as the batch path's.
    """
    count = max(0, (until - after) // SLOT)
    (energy,) = slot_kwh([ReadingColumns.of(readings)], after, count).tolist()

    operations: dict[datetime, int] = {}
    on_minutes: dict[datetime, float] = {}
    events = sorted(tv_events)
    slots: list[Interval] = []
    end = after + SLOT
    index = 0
    for kwh in energy:
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
                kwh=None if math.isnan(kwh) else kwh,
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
