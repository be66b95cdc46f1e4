"""What counts as a person: changes beyond the home's standby noise, and TV key presses."""

from __future__ import annotations

import pickle
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


def _tv_left_on_for_four_hours(evidence: ActivityEvidence) -> None:
    for i in range(48, 56):
        evidence.learn_one(_at(i, 0.17, tv_on_minutes=30.0))


def test_the_fall_after_a_tv_switched_itself_off_mid_interval_is_not_a_person(
    quiet_home: ActivityEvidence,
) -> None:
    _tv_left_on_for_four_hours(quiet_home)
    went_off = _at(56, 0.13, tv_on_minutes=15.0)  # off by itself a quarter of an hour in
    assert not quiet_home.is_evidence(went_off)
    quiet_home.learn_one(went_off)
    assert not quiet_home.is_evidence(_at(57, 0.05))  # the rest of the set's share
    quiet_home.learn_one(_at(57, 0.05))
    quiet_home.learn_one(_at(58, 0.11))
    assert quiet_home.is_evidence(_at(59, 0.05))  # only the one reading after it


def test_a_state_saved_before_the_two_reading_auto_off_still_loads(
    quiet_home: ActivityEvidence,
) -> None:
    _tv_left_on_for_four_hours(quiet_home)
    quiet_home.learn_one(_at(56, 0.13, tv_on_minutes=15.0))
    del quiet_home._tv_went_off_itself  # what an earlier version saved
    restored = pickle.loads(pickle.dumps(quiet_home))
    # Nothing remembered: the next fall counts, as it did when the state was saved.
    assert restored.is_evidence(_at(57, 0.05))
    restored.learn_one(_at(57, 0.05))
    assert restored._tv_went_off_itself is False


def test_a_change_within_the_standby_band_is_not_a_person_but_a_light_above_it_is() -> None:
    evidence = ActivityEvidence()
    for i in range(96):  # a freezer at 0.06 kWh that dips to 0.02 one half-hour in twenty
        evidence.learn_one(_at(i, 0.02 if i % 20 == 0 else 0.06))
    assert not evidence.is_evidence(_at(96, 0.02))  # a dip: 0.04 kWh, but within the band
    assert evidence.within_standby(_at(96, 0.02))
    assert evidence.is_evidence(_at(96, 0.10))  # a 80 W light: above the band
    evidence.learn_one(_at(96, 0.10))
    assert evidence.is_evidence(_at(97, 0.06))  # switched off again: from above the band
