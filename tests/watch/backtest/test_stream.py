"""The replay: lag respected, score before learn, one alert row per new severity."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.base import Detector, Interval
from watch.backtest.grid import household_slots
from watch.backtest.inputs import to_ns
from watch.backtest.stream import SimClock, replay_household


class SpyDetector(Detector):
    """Records what it was shown, and when by the simulated clock."""

    watch_threshold = 2.0
    alert_threshold = 3.0

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, datetime, datetime]] = []

    def score_one(self, x: Interval) -> float:
        self.calls.append(("score", x.end, self.clock.now))
        return 0.0

    def learn_one(self, x: Interval) -> None:
        self.calls.append(("learn", x.end, self.clock.now))


class ScriptedDetector(Detector):
    """Plays a fixed score per slot; its episode starts where the script says."""

    watch_threshold = 2.0
    alert_threshold = 3.5

    def __init__(self, scores: list[float], starts: list[int | None], ends: list[datetime]):
        self.scores, self.starts, self.ends = scores, starts, ends
        self.position = 0

    def score_one(self, x: Interval) -> float:
        return self.scores[self.position]

    def quiet_since(self, x: Interval) -> datetime | None:
        start = self.starts[self.position]
        return None if start is None else self.ends[start]

    def explain_one(self, x: Interval) -> str:
        return f"scripted {self.score_one(x)}"

    def learn_one(self, x: Interval) -> None:
        self.position += 1


def _slots(town, household_id: str = "H001", count: int = 200):
    readings, tv, _ = town
    own = readings[readings["household_id"] == household_id].iloc[:count]
    events = tv[tv["household_id"] == household_id]
    return household_slots(
        household_id,
        "Asia/Tokyo",
        to_ns(own["timestamp"]),
        own["kwh"].to_numpy(),
        to_ns(events["timestamp"]),
        events["event"].to_numpy(),
    )


@pytest.mark.parametrize("lag", [timedelta(0), timedelta(minutes=45), timedelta(hours=2)])
def test_a_detector_never_sees_a_slot_before_it_would_have_arrived(town, lag):
    slots = _slots(town)
    clock = SimClock()
    spy = SpyDetector(clock)
    replay_household(slots, {"spy": spy}, lag, clock=clock)
    assert len(spy.calls) == 2 * len(slots)
    for _, end, now in spy.calls:
        assert end + lag <= now  # never early
        assert now - (end + lag) < timedelta(minutes=30)  # delivered at the first tick after
        assert now.minute in (0, 30) and now.second == 0
    # Score before learn, slot after slot, in time order.
    kinds = [kind for kind, _, _ in spy.calls]
    assert kinds == ["score", "learn"] * len(slots)
    ends = [end for kind, end, _ in spy.calls if kind == "score"]
    assert ends == sorted(ends) and len(set(ends)) == len(ends)


def test_fired_at_is_the_tick_at_which_the_slot_arrived():
    start = datetime(2025, 1, 6, tzinfo=UTC)
    ends = [start + timedelta(minutes=30 * (i + 1)) for i in range(4)]
    slots = household_slots(
        "H1", "UTC", np.array([int(e.timestamp()) * 10**9 for e in ends]), np.full(4, 0.05)
    )
    scripted = ScriptedDetector([0.0, 4.0, 4.0, 0.0], [None, 0, 0, None], ends)
    run = replay_household(slots, {"s": scripted}, timedelta(minutes=60))
    [row] = run.alerts["s"]
    assert row.fired_at == ends[1] + timedelta(minutes=60)


def test_an_episode_writes_one_row_per_new_severity_and_a_new_episode_starts_again():
    start = datetime(2025, 1, 6, tzinfo=UTC)
    scores = [0.0, 2.5, 3.0, 4.0, 5.0, 3.0, 4.0, 0.0, 4.0, 4.0, 4.2]
    starts = [None, 1, 1, 1, 1, 1, 1, None, 8, 8, 10]  # the last slot: a new stretch at once
    ends = [start + timedelta(minutes=30 * (i + 1)) for i in range(len(scores))]
    slots = household_slots(
        "H1",
        "UTC",
        np.array([int(e.timestamp()) * 10**9 for e in ends]),
        np.full(len(scores), 0.05),
    )
    run = replay_household(slots, {"s": ScriptedDetector(scores, starts, ends)}, timedelta(0))
    rows = [(a.fired_at, a.severity, a.kind) for a in run.alerts["s"]]
    assert rows == [
        (ends[1], "watch", "inactivity"),
        (ends[3], "alert", "inactivity"),  # 4.0 and 5.0, then back and up again: one row
        (ends[8], "alert", "inactivity"),  # after a normal slot, a new episode
        (ends[10], "alert", "inactivity"),  # a stretch that began anew
    ]
    assert run.alerts["s"][1].reason == "scripted 4.0"
    np.testing.assert_allclose(run.scores["s"], scores)


def test_a_silent_meter_raises_an_outage_row_not_an_inactivity_one():
    start = datetime(2025, 1, 6, tzinfo=UTC)
    ends = [start + timedelta(minutes=30 * (i + 1)) for i in range(30)]
    kept = [e for i, e in enumerate(ends) if not 5 <= i < 25]  # 10 h without data
    slots = household_slots(
        "H1", "UTC", np.array([int(e.timestamp()) * 10**9 for e in kept]), np.full(len(kept), 0.1)
    )
    spy = SpyDetector(SimClock())
    run = replay_household(slots, {"spy": spy}, timedelta(0))
    assert [(a.kind, a.severity) for a in run.alerts["outage"]] == [
        ("outage", "watch"),
        ("outage", "alert"),
    ]
    assert run.alerts["spy"] == []
