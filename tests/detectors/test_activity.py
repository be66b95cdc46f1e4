"""What counts as a person: changes beyond the home's standby noise, and TV key presses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from detectors.activity import ActivityEvidence, QuietTracker
from detectors.base import Interval

START = datetime(2025, 1, 6, tzinfo=UTC)


def _at(i: int, kwh: float | None, **tv) -> Interval:
    return Interval(START + timedelta(minutes=30 * i), kwh, **tv)


@pytest.fixture
def quiet_home() -> ActivityEvidence:
    """A day of standby with fridge noise (0.050-0.056 kWh) learned."""
    evidence = ActivityEvidence()
    for i in range(48):
        evidence.learn_one(_at(i, 0.05 + 0.002 * (i % 4)))
    return evidence


def test_a_kettle_is_evidence_and_the_fridge_is_not(quiet_home: ActivityEvidence) -> None:
    assert quiet_home.is_evidence(_at(48, 0.30))
    assert not quiet_home.is_evidence(_at(48, 0.055))
    assert quiet_home.score_one(_at(48, 0.30)) > 10 * quiet_home.score_one(_at(48, 0.055))


def test_switching_something_off_is_evidence(quiet_home: ActivityEvidence) -> None:
    quiet_home.learn_one(_at(48, 0.40))
    assert quiet_home.is_evidence(_at(49, 0.05))


def test_a_lamp_left_on_is_evidence_once_then_a_flat_line(quiet_home: ActivityEvidence) -> None:
    lamp = [_at(48 + i, 0.105) for i in range(6)]
    assert quiet_home.is_evidence(lamp[0])
    quiet_home.learn_one(lamp[0])
    for x in lamp[1:]:
        assert not quiet_home.is_evidence(x)
        assert quiet_home.is_raised(x)
        quiet_home.learn_one(x)


def test_a_tv_on_without_a_key_pressed_is_not_evidence(quiet_home: ActivityEvidence) -> None:
    assert not quiet_home.is_evidence(_at(48, 0.052, tv_on_minutes=30.0))
    assert quiet_home.is_evidence(_at(48, 0.052, tv_operations=1, tv_on_minutes=30.0))


def test_a_missing_reading_is_not_evidence_and_not_learned(quiet_home: ActivityEvidence) -> None:
    baseline, noise = quiet_home.baseline, quiet_home.noise
    assert not quiet_home.is_evidence(_at(48, None))
    quiet_home.learn_one(_at(48, None))
    assert (quiet_home.baseline, quiet_home.noise) == (baseline, noise)
    assert not quiet_home.is_evidence(_at(49, 0.052))


def test_it_learns_the_standby_floor_of_the_home(quiet_home: ActivityEvidence) -> None:
    assert 0.049 <= quiet_home.baseline <= 0.052
    assert quiet_home.noise < 0.01


def test_a_noisier_fridge_raises_the_bar_for_evidence() -> None:
    noisy = ActivityEvidence()
    for i in range(96):
        noisy.learn_one(_at(i, 0.05 + 0.03 * (i % 2)))
    assert not noisy.is_evidence(_at(96, 0.05))  # an ordinary fridge cycle
    assert noisy.is_evidence(_at(96, 0.40))


def test_the_tracker_counts_only_observed_quiet_minutes() -> None:
    tracker = QuietTracker(ActivityEvidence())
    readings = [0.05, 0.40, 0.05, None, None, 0.05, 0.05]
    for i, kwh in enumerate(readings):
        tracker.advance(_at(i, kwh))
    assert tracker.since == START + timedelta(minutes=60)
    assert tracker.quiet_minutes == 60.0  # two observed quiet half-hours, two missing ones


def test_the_tracker_returns_the_stretch_that_a_person_ended() -> None:
    tracker = QuietTracker(ActivityEvidence())
    for i in range(4):
        assert tracker.advance(_at(i, 0.05)) is None
    ended = tracker.advance(_at(4, 0.5))
    assert ended is not None
    assert ended.quiet_minutes == 120.0
    assert tracker.since == _at(4, 0.5).end
