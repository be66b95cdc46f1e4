"""The vectorised slots give exactly what the application's build_slots gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from watch.backtest.grid import household_slots
from watch.backtest.inputs import to_ns
from watch.slots import SLOT, TvState, build_slots


def test_vectorised_slots_match_build_slots_on_a_simulated_household(town):
    readings, tv, _ = town
    own = readings[readings["household_id"] == "H001"].iloc[:480]
    own = own.drop(own.index[[100, 101, 102]])  # a gap: those slots must come out unknown
    events = tv[tv["household_id"] == "H001"]
    slots = household_slots(
        "H001",
        "Asia/Tokyo",
        to_ns(own["timestamp"]),
        own["kwh"].to_numpy(),
        to_ns(events["timestamp"]),
        events["event"].to_numpy(),
    )
    ends = [t.to_pydatetime().astimezone(UTC) for t in own["timestamp"]]
    expected = build_slots(
        after=ends[0] - SLOT,
        until=ends[-1],
        readings=[(e, float(k), 30) for e, k in zip(ends, own["kwh"], strict=True)],
        tv_events=[
            (t.to_pydatetime().astimezone(UTC), e)
            for t, e in zip(events["timestamp"], events["event"], strict=True)
        ],
        tv_state=TvState(),
    )
    got = [slots.interval(i) for i in range(len(slots))]
    assert len(got) == len(expected) == 480
    assert sum(x.kwh is None for x in got) == 3
    assert [x.end for x in got] == [x.end for x in expected]
    assert [x.kwh for x in got] == [x.kwh for x in expected]
    assert [x.tv_operations for x in got] == [x.tv_operations for x in expected]
    assert sum(x.tv_operations for x in got) > 10
    np.testing.assert_allclose(
        [x.tv_on_minutes for x in got], [x.tv_on_minutes for x in expected], atol=1e-6
    )


def test_an_hourly_reading_is_split_evenly_over_its_two_slots():
    start = datetime(2025, 1, 6, tzinfo=UTC)
    ends = np.array([int((start + timedelta(hours=h)).timestamp()) for h in (1, 2, 3)]) * 10**9
    slots = household_slots("H1", "UTC", ends, np.array([0.2, 0.4, 0.6]))
    assert slots.kwh.tolist() == [0.1, 0.1, 0.2, 0.2, 0.3, 0.3]
    assert slots.interval(0).end == start + timedelta(minutes=30)


def test_a_year_of_readings_keeps_its_last_slot():
    """np.arange sizes a range in floating point: on nanosecond stamps a long span lost a slot."""
    start = datetime(2013, 1, 1, tzinfo=UTC)
    count = 365 * 48
    ends = (int(start.timestamp()) + 1800 * np.arange(1, count + 1, dtype=np.int64)) * 10**9
    slots = household_slots("H1", "UTC", ends, np.full(count, 0.1))
    assert len(slots.ends) == len(slots.kwh) == count
    assert slots.ends[-1] == ends[-1]
    assert np.all(np.diff(slots.ends) == 1800 * 10**9)
