"""Detectors' reasons in Japanese: the detectors' real words, every clause, the same numbers.

The reasons here are made by running the detectors, not typed in: if a detector's wording
changes, the translation below stops matching and these tests say so.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from detectors.base import Detector, Interval
from detectors.baselines import HalfSpaceTreesBaseline
from detectors.inactivity import QuietStretchDetector
from detectors.outage import DataOutage
from detectors.rules import NoActivityRule
from watch.web.reasons import localise_reason
from watch.web.reports import DriftTrend, drift_reasons

TOKYO = ZoneInfo("Asia/Tokyo")
SLOT = timedelta(minutes=30)
MONDAY = datetime(2025, 1, 6, tzinfo=TOKYO)  # local midnight
SATURDAY = datetime(2025, 1, 11, tzinfo=TOKYO)
NUMBER = re.compile(r"\d{1,2}:\d{2}|\d+(?:\.\d+)?")
LATIN = re.compile(r"[A-Za-z]")


def at(local: datetime) -> datetime:
    return local.astimezone(UTC)


def live(
    detectors: list[Detector],
    start: datetime,
    end: datetime,
    *,
    quiet_from: datetime | None = None,
    tv_left_on: bool = False,
) -> None:
    """A resident up from 07:00 to 22:00 local (a kettle or a light switched on every two
    hours), standby at night; from ``quiet_from`` on, nothing (with the TV on, unattended, when
    ``tv_left_on``)."""
    t, index = start, 0
    while t < end:
        t += SLOT
        local = (t - SLOT).astimezone(TOKYO)
        quiet = quiet_from is not None and t > quiet_from
        busy = 7 <= local.hour < 22 and not quiet
        kwh = 0.5 if busy and index % 4 == 0 else 0.1
        tv = 30.0 if quiet and tv_left_on else 0.0
        x = Interval(at(t), kwh, tv_on_minutes=tv)
        for detector in detectors:
            detector.learn_one(x)
        index += 1


def history(start: datetime = MONDAY, days: int = 14) -> QuietStretchDetector:
    detector = QuietStretchDetector(timezone="Asia/Tokyo")
    live([detector], start, start + timedelta(days=days, hours=22))
    return detector


def situations() -> dict[str, str]:
    """Each situation a detector explains, and what it said."""
    said: dict[str, str] = {}

    fresh = QuietStretchDetector(timezone="Asia/Tokyo")
    live([fresh], MONDAY, MONDAY + timedelta(hours=8))
    said["no history, weekday"] = fresh.explain_one(Interval(at(MONDAY + timedelta(hours=11)), 0.1))

    fresh_weekend = QuietStretchDetector(timezone="Asia/Tokyo")
    live([fresh_weekend], SATURDAY, SATURDAY + timedelta(hours=9))
    later = Interval(at(SATURDAY + timedelta(hours=12)), 0.1)
    said["no history, weekend"] = fresh_weekend.explain_one(later)

    weekdays = history()  # two weeks, the last evening a Monday's
    tuesday_morning = MONDAY + timedelta(days=15)
    live(
        [weekdays],
        MONDAY + timedelta(days=14, hours=22),
        tuesday_morning + timedelta(hours=8),
        quiet_from=MONDAY + timedelta(days=14, hours=22),
    )
    said["history, weekday"] = weekdays.explain_one(
        Interval(at(tuesday_morning + timedelta(hours=8, minutes=30)), 0.1)
    )
    live(
        [weekdays],
        tuesday_morning + timedelta(hours=8),
        tuesday_morning + timedelta(hours=10),
        quiet_from=tuesday_morning,
        tv_left_on=True,
    )
    said["history, stuck load"] = weekdays.explain_one(
        Interval(at(tuesday_morning + timedelta(hours=10, minutes=30)), 0.1, tv_on_minutes=30)
    )

    weekends = history(start=SATURDAY - timedelta(days=7))  # two weeks to a Saturday evening
    saturday_night = SATURDAY + timedelta(days=7, hours=22)
    sunday = SATURDAY + timedelta(days=8)
    live([weekends], saturday_night, sunday + timedelta(hours=10), quiet_from=saturday_night)
    said["history, weekend"] = weekends.explain_one(
        Interval(at(sunday + timedelta(hours=10, minutes=30)), 0.1)
    )

    busy = QuietStretchDetector(timezone="Asia/Tokyo")
    live([busy], MONDAY, MONDAY + timedelta(hours=8))
    said["activity"] = busy.explain_one(Interval(at(MONDAY + timedelta(hours=8, minutes=30)), 0.6))

    outage = DataOutage(timezone="Asia/Tokyo")
    live([outage], MONDAY, MONDAY + timedelta(hours=3))
    said["outage"] = outage.explain_one(Interval(at(MONDAY + timedelta(hours=10)), None))
    said["data arriving"] = outage.explain_one(
        Interval(at(MONDAY + timedelta(hours=3, minutes=30)), 0.1)
    )

    rule = NoActivityRule(hours=12)
    live([rule], MONDAY, MONDAY + timedelta(hours=23), quiet_from=MONDAY + timedelta(hours=14))
    said["rule"] = rule.explain_one(Interval(at(MONDAY + timedelta(hours=23, minutes=30)), 0.1))
    said["rule, activity"] = rule.explain_one(
        Interval(at(MONDAY + timedelta(hours=23, minutes=30)), 0.9)
    )

    trees = HalfSpaceTreesBaseline(timezone="Asia/Tokyo", window_size=48)
    said["score only"] = trees.explain_one(Interval(at(MONDAY + timedelta(hours=1)), 0.3))

    drifted = DriftTrend(7, 21, 2.0, 4.0, -50.0, "08:00", "06:00", 120.0)
    for number, text in enumerate(drift_reasons(drifted)):
        said[f"drift {number}"] = text
    return said


SAID = situations()

# The clause each situation must have produced: a detector that stops saying it makes the
# situation above (not the translation) the thing to fix.
EXPECTED_CLAUSES = {
    "no history, weekday": ["no activity since", "no history yet for weekdays"],
    "no history, weekend": ["no activity since", "no history yet for weekends"],
    "history, weekday": ["no activity since", "on weekdays this home is usually active again"],
    "history, stuck load": ["on weekdays", "a flat load (lamp, heater or TV)"],
    "history, weekend": ["on weekends this home is usually active again"],
    "activity": ["activity in the last interval"],
    "outage": ["no meter data since"],
    "data arriving": ["meter data arriving"],
    "rule": ["no activity for", "(rule: alert after 12 h)"],
    "rule, activity": ["activity in the last interval"],
    "score only": ["score "],
    "drift 0": ["daily use -50.0%"],
    "drift 1": ["first activity 120 min later"],
}


def test_every_situation_produced_the_clause_it_is_meant_to_test():
    assert set(SAID) == set(EXPECTED_CLAUSES)
    for name, clauses in EXPECTED_CLAUSES.items():
        for clause in clauses:
            assert clause in SAID[name], (name, SAID[name])


@pytest.mark.parametrize("name", sorted(EXPECTED_CLAUSES))
def test_each_detector_reason_reads_in_japanese_with_the_same_numbers(name):
    english = SAID[name]
    japanese = localise_reason(english, "ja")

    assert LATIN.search(japanese.replace("kWh", "")) is None, (english, japanese)
    numbers, kept = Counter(NUMBER.findall(english)), Counter(NUMBER.findall(japanese))
    if name.startswith("drift"):
        assert numbers <= kept, (english, japanese)  # "1日あたり" adds a 1
    else:
        assert numbers == kept, (english, japanese)


def test_the_reasons_read_as_a_welfare_worker_would_say_them():
    weekday = localise_reason(SAID["history, weekday"], "ja")
    clock = re.search(r"since (\d\d:\d\d)", SAID["history, weekday"]).group(1)
    assert weekday.startswith(f"{clock}から活動がありません（")
    assert f"。平日、この世帯では通常{clock}から" in weekday and weekday.endswith(
        "以内に活動が再開します"
    )
    assert "土日の" in localise_reason(SAID["no history, weekend"], "ja")
    assert "まだ過去の記録がありません" in localise_reason(SAID["no history, weekend"], "ja")
    assert "テレビ" in localise_reason(SAID["history, stuck load"], "ja")
    assert localise_reason("no meter data since 03:00 (7.0 h)", "ja") == (
        "03:00からメーターのデータが届いていません（7.0時間）"
    )
    assert localise_reason("daily use +35.0% (5.4 vs 4.0 kWh/day)", "ja") == (
        "1日あたりの使用量が35.0%増（直近 5.4 kWh/日、以前 4.0 kWh/日）"
    )


def test_each_clause_alone_is_translated_as_the_household_page_splits_them():
    for part in SAID["history, stuck load"].split(";"):
        assert LATIN.search(localise_reason(part.strip(), "ja")) is None


@pytest.mark.parametrize("name", sorted(EXPECTED_CLAUSES))
def test_english_pages_keep_the_detectors_words(name):
    assert localise_reason(SAID[name], "en") == SAID[name]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "in hospital until the 14th",
        "入院中",
        "no electricity use for 14 hours; the TV has not been on since yesterday",
        "no activity since soon",
        ";;",
    ],
)
def test_text_it_does_not_know_is_shown_unchanged(text):
    assert localise_reason(text, "ja") == text


def test_a_known_clause_beside_an_unknown_one_keeps_the_unknown_words():
    mixed = "no meter data since 03:00 (7.0 h); the router was replaced"
    assert localise_reason(mixed, "ja") == (
        "03:00からメーターのデータが届いていません（7.0時間）。the router was replaced"
    )


def test_a_stale_sources_reason_keeps_its_error_text_whole():
    reason = (
        "no successful pull of source meter since 2025-01-06T00:00:00+00:00; "
        "last error: FileNotFoundError: [Errno 2] a; b"
    )
    assert localise_reason(reason, "ja") == (
        "データ元「meter」から2025-01-06T00:00:00+00:00以降、取得に成功していません"
        "（最後のエラー：FileNotFoundError: [Errno 2] a; b）"
    )


def test_it_never_raises_on_what_is_not_text():
    assert localise_reason(None, "ja") is None  # type: ignore[arg-type]
    assert localise_reason("score 0.50", "xx") == "score 0.50"
