"""One household's data on the 30-minute UTC grid, built with numpy (the backtest's slots).

``watch.slots.build_slots`` builds slots one at a time from database rows; replaying a year of a
few hundred homes needs the same slots for millions of intervals, so this module computes them as
arrays. The rules are the same (a test holds the two together):

- a reading ending at ``t`` belongs to the slot ending at ``t`` rounded up to the half hour;
  readings finer than 30 minutes are summed, an hourly reading is split evenly over its two slots;
- a slot with no reading has ``kwh = NaN`` (``Interval.kwh is None``: unknown, not quiet);
- a TV event at ``at`` belongs to the slot ``(end - 30 min, end]`` that contains it; ``power_on``,
  ``channel`` and ``key`` are operations; on-minutes are the overlap of the set's on-periods
  (``power_on`` to ``power_off``) with the slot;
- the grid runs from the first to the last reading's slot; TV events at or before the start of
  the first slot are ignored, as the application ignores events of slots it has not scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from detectors.base import Interval
from watch.slots import TV_OPERATIONS

SLOT_NS = 30 * 60 * 10**9
_MINUTE_NS = 60 * 10**9


@dataclass(frozen=True)
class HouseholdSlots:
    """A household's slots as arrays; ``ends`` are UTC nanoseconds since the epoch."""

    household_id: str
    timezone: str
    ends: np.ndarray  # int64, ns, strictly increasing by one slot
    kwh: np.ndarray  # float64, NaN where no reading arrived
    tv_operations: np.ndarray  # int64
    tv_on_minutes: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.ends)

    def interval(self, index: int) -> Interval:
        """The ``Interval`` a detector sees for slot ``index``."""
        kwh = self.kwh[index]
        return Interval(
            end=datetime.fromtimestamp(int(self.ends[index]) / 1e9, tz=UTC),
            kwh=None if np.isnan(kwh) else float(kwh),
            minutes=30,
            tv_operations=int(self.tv_operations[index]),
            tv_on_minutes=float(self.tv_on_minutes[index]),
        )


def _ceil_slot(ns: np.ndarray) -> np.ndarray:
    return -(-ns // SLOT_NS) * SLOT_NS


def _interval_minutes(ends: np.ndarray) -> int:
    """The household's reading interval: the most common gap between readings (30 if unknown)."""
    gaps = np.diff(np.unique(ends)) // _MINUTE_NS
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return 30
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])


def household_slots(
    household_id: str,
    timezone: str,
    reading_ends: np.ndarray,
    kwh: np.ndarray,
    tv_times: np.ndarray | None = None,
    tv_events: np.ndarray | None = None,
) -> HouseholdSlots:
    """Slots of one household from its readings (interval ends, UTC ns) and TV events.

    Examples
    --------
    >>> ends = np.array([1800, 3600, 7200], dtype=np.int64) * 10**9
    >>> slots = household_slots("H1", "UTC", ends, np.array([0.1, 0.2, 0.3]))
    >>> slots.kwh.tolist()
    [0.1, 0.2, nan, 0.3]
    >>> slots.interval(2).kwh is None
    True
    """
    reading_ends = np.asarray(reading_ends, dtype=np.int64)
    kwh = np.asarray(kwh, dtype=np.float64)
    if reading_ends.size == 0:
        raise ValueError(f"household {household_id!r} has no readings")
    minutes = _interval_minutes(reading_ends)
    if minutes > 30:
        parts = minutes // 30
        offsets = np.arange(parts, dtype=np.int64) * SLOT_NS
        slot_ends = _ceil_slot((reading_ends[:, None] - offsets[None, :]).ravel())
        energy = np.repeat(kwh / parts, parts)
    else:
        slot_ends = _ceil_slot(reading_ends)
        energy = kwh
    first, last = int(slot_ends.min()), int(slot_ends.max())
    # Not np.arange(first, last + 1, SLOT_NS): it sizes the range in floating point, and on
    # nanosecond stamps a span over about 100 days loses its last slot.
    ends = first + SLOT_NS * np.arange((last - first) // SLOT_NS + 1, dtype=np.int64)
    index = (slot_ends - first) // SLOT_NS
    total = np.bincount(index, weights=energy, minlength=len(ends))
    seen = np.bincount(index, minlength=len(ends)) > 0
    grid_kwh = np.where(seen, np.round(total, 6), np.nan)

    operations = np.zeros(len(ends), dtype=np.int64)
    on_minutes = np.zeros(len(ends), dtype=np.float64)
    if tv_times is not None and len(tv_times):
        operations, on_minutes = _tv_arrays(
            ends, np.asarray(tv_times, dtype=np.int64), np.asarray(tv_events, dtype=object)
        )
    return HouseholdSlots(household_id, timezone, ends, grid_kwh, operations, on_minutes)


def _tv_arrays(
    ends: np.ndarray, times: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(times, kind="stable")
    times, events = times[order], events[order]
    grid_start = ends[0] - SLOT_NS
    keep = (times > grid_start) & (times <= ends[-1])
    times, events = times[keep], events[keep]

    is_operation = np.isin(events, list(TV_OPERATIONS))
    slot_index = (_ceil_slot(times[is_operation]) - ends[0]) // SLOT_NS
    operations = np.bincount(slot_index, minlength=len(ends)).astype(np.int64)

    # On-periods: a power_on while off starts one, a power_off while on ends it (as build_slots).
    starts, stops = [], []
    on_since: int | None = None
    for at, event in zip(times.tolist(), events.tolist(), strict=True):
        if event == "power_on" and on_since is None:
            on_since = at
        elif event == "power_off" and on_since is not None:
            starts.append(on_since)
            stops.append(at)
            on_since = None
    if on_since is not None:
        starts.append(on_since)
        stops.append(int(ends[-1]))
    on_minutes = np.zeros(len(ends))
    if starts:
        cumulative = _on_time_before(np.array(starts), np.array(stops), np.r_[grid_start, ends])
        on_minutes = np.diff(cumulative) / _MINUTE_NS
    return operations, on_minutes


def _on_time_before(starts: np.ndarray, stops: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Total on-time (ns) before each instant in ``at``, for disjoint sorted on-periods."""
    durations = stops - starts
    done = np.r_[0, np.cumsum(durations)]
    started = np.searchsorted(starts, at, side="right")  # periods begun before each instant
    last = np.maximum(started - 1, 0)
    partial = np.where(started > 0, np.clip(at - starts[last], 0, durations[last]), 0)
    return np.where(started > 0, done[last] + partial, 0).astype(np.float64)
