"""The fixed N-hour rule (today's practice) and the data-outage detector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detectors.base import Interval, Severity
from detectors.outage import DataOutage
from detectors.rules import NoActivityRule

START = datetime(2025, 1, 6, tzinfo=UTC)


def _at(i: int, kwh: float | None, **tv) -> Interval:
    return Interval(START + timedelta(minutes=30 * (i + 1)), kwh, **tv)


def test_the_rule_alerts_after_its_hours_of_quiet_and_not_before() -> None:
    rule = NoActivityRule(hours=12)
    for i, kwh in enumerate([0.05, 0.5, 0.05]):  # a kettle on and off: somebody is there
        rule.learn_one(_at(i, kwh))
    by_hours = {}
    for i in range(3, 28):
        x = _at(i, 0.05)
        by_hours[(i - 2) / 2] = rule.severity(rule.score_one(x))
        rule.learn_one(x)
    assert by_hours[5.5] is Severity.normal
    assert by_hours[6.0] is Severity.watch
    assert by_hours[11.5] is Severity.watch
    assert by_hours[12.0] is Severity.alert
    assert rule.explain_one(_at(28, 0.05)) == "no activity for 13.0 h (rule: alert after 12 h)"


def test_the_rule_counts_activity_as_activity_evidence_does() -> None:
    rule = NoActivityRule(hours=1)
    for i, kwh in enumerate([0.05, 0.05, 0.05]):
        rule.learn_one(_at(i, kwh))
    assert rule.score_one(_at(3, 0.05, tv_on_minutes=30.0)) > 0  # TV merely on: still quiet
    assert rule.score_one(_at(3, 0.05, tv_operations=1)) == 0.0  # a key pressed
    assert rule.score_one(_at(3, None)) == rule.score_one(_at(3, None))
    assert rule.quiet_since(_at(3, 0.05)) == START


def test_missing_readings_do_not_add_to_the_rules_quiet_time() -> None:
    rule = NoActivityRule(hours=12)
    for i, kwh in enumerate([0.05, 0.5, 0.05]):
        rule.learn_one(_at(i, kwh))
    for i in range(3, 51):
        rule.learn_one(_at(i, None))
    assert rule.score_one(_at(51, 0.05)) == 0.5 / 12


def test_the_outage_watches_at_two_hours_and_alerts_at_six() -> None:
    outage = DataOutage(timezone="Asia/Tokyo")
    outage.learn_one(_at(5, 0.05))  # 03:00 UTC = 12:00 in Tokyo
    by_hours = {}
    for i in range(6, 20):
        x = _at(i, None)
        by_hours[outage.score_one(x)] = outage.severity(outage.score_one(x))
        outage.learn_one(x)
    assert by_hours[1.5] is Severity.normal
    assert by_hours[2.0] is Severity.watch
    assert by_hours[6.0] is Severity.alert
    assert outage.explain_one(_at(19, None)) == "no meter data since 12:00 (7.0 h)"
    assert outage.silent_since(_at(19, None)) == _at(5, 0.05).end


def test_tv_activity_counts_as_data_arriving() -> None:
    outage = DataOutage()
    outage.learn_one(_at(0, 0.05))
    for i in range(1, 12):
        outage.learn_one(_at(i, None))
    assert outage.score_one(_at(12, None, tv_operations=1)) == 0.0
    assert outage.score_one(_at(12, None)) == 6.0


def test_a_quiet_home_with_data_is_no_outage() -> None:
    outage = DataOutage()
    for i in range(48):
        x = _at(i, 0.05)
        assert outage.score_one(x) == 0.0
        outage.learn_one(x)
    assert outage.explain_one(_at(48, 0.05)) == "meter data arriving"
    assert outage.silent_since(_at(48, 0.05)) is None
