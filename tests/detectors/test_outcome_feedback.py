"""QuietStretchDetector.learn_outcome: vouched-for stretches are learned, others stay out."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from detectors.base import Interval, Severity
from detectors.inactivity import QuietStretchDetector

from .conftest import Collapse, household_stream

TOKYO = ZoneInfo("Asia/Tokyo")


def _often_out(days: int, collapse: Collapse | None = None) -> list[Interval]:
    """The synthetic resident, but out all day (flat standby) every Tuesday and Thursday."""
    stream = household_stream(seed=1, days=days, collapse=collapse)
    intervals = []
    for x in stream.intervals:
        start_of_slot = (x.end - timedelta(minutes=30)).astimezone(TOKYO)
        day, hour = start_of_slot.weekday(), start_of_slot.hour
        out = (day in (1, 3) and hour >= 9) or (day in (2, 4) and hour < 1)
        intervals.append(Interval(x.end, 0.05) if out and x.kwh is not None else x)
    return intervals


def _alert_episodes(
    intervals: list[Interval], answer: str | None, after: datetime | None = None
) -> tuple[list[datetime], QuietStretchDetector]:
    """Starts of the stretches that reached ``alert`` (after ``after``); each is answered."""
    detector = QuietStretchDetector()
    flagged: list[datetime] = []
    for x in intervals:
        if detector.severity(detector.score_one(x)) is Severity.alert:
            since = detector.quiet_since(x)
            if since not in flagged and (after is None or x.end > after):
                flagged.append(since)
                if answer is not None:
                    detector.learn_outcome(since, answer)
        detector.learn_one(x)
    return flagged, detector


def test_a_home_often_out_all_day_stops_alerting_after_a_few_vouched_outings() -> None:
    intervals = _often_out(days=70)
    unanswered, _ = _alert_episodes(intervals, None)
    answered, _ = _alert_episodes(intervals, "fine")
    late_unanswered = [s for s in unanswered if s > intervals[0].end + timedelta(days=35)]
    late_answered = [s for s in answered if s > intervals[0].end + timedelta(days=35)]
    assert len(late_unanswered) >= 8  # without answers every outing alerts, for ever
    assert len(answered) <= 6 and late_answered == []


@pytest.mark.parametrize("outcome", ["needed_help", "unknown"])
def test_an_outing_not_vouched_for_stays_out_of_the_history(outcome: str) -> None:
    intervals = _often_out(days=70)
    unanswered, _ = _alert_episodes(intervals, None)
    other, _ = _alert_episodes(intervals, outcome)
    assert other == unanswered


def test_a_real_collapse_still_alerts_in_a_home_whose_outings_were_vouched_for() -> None:
    start = household_stream(seed=1, days=1).intervals[0].end
    collapse_at = start + timedelta(days=63, hours=11)  # a Monday evening, 20:00 in Tokyo
    collapse = Collapse(collapse_at, until=collapse_at + timedelta(days=2))
    intervals = _often_out(days=66, collapse=collapse)
    flagged, _ = _alert_episodes(intervals, "fine", after=collapse_at)
    assert flagged and flagged[0] - collapse_at <= timedelta(hours=14)


def test_a_late_answer_about_a_stretch_that_already_ended_is_learned() -> None:
    intervals = _often_out(days=14)
    first, _ = _alert_episodes(intervals, None)
    detector = QuietStretchDetector()
    cutoff = first[0] + timedelta(hours=20)  # the outing has ended by then
    for x in intervals:
        if x.end > cutoff:
            break
        detector.score_one(x)
        detector.learn_one(x)
    before = detector.survival(first[0], 15.0)
    detector.learn_outcome(first[0], "away")
    assert detector.survival(first[0], 15.0) > 10 * before


def test_scoring_before_learning_gives_the_scores_of_a_fresh_computation() -> None:
    intervals = household_stream(seed=2, days=30).intervals
    scored_then_learned, learned_only = QuietStretchDetector(), QuietStretchDetector()
    for x in intervals:
        first = scored_then_learned.score_one(x)
        assert scored_then_learned.score_one(x) == first
        scored_then_learned.learn_one(x)
        learned_only.learn_one(x)
    assert np.array_equal(scored_then_learned._durations, learned_only._durations, equal_nan=True)
