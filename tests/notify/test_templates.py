"""Message texts: short enough for two SMS segments, in both languages."""

from datetime import UTC, datetime

import pytest

from notify.templates import format_since, render, sms_segments, template_keys

REALISTIC = {
    "name": "佐々木 美智子",
    "area": "練馬区桜台三丁目",
    "since": "12/31 23:30",
    "incident_id": 123456,
    "who": "ボランティアの方",
    "outcome": "支援が必要でした",
    "household_id": "nerima-sakuradai-0123",
}


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("key", template_keys())
def test_every_message_fits_in_two_sms_segments(key, language):
    body = render(key, language, **REALISTIC)
    assert sms_segments(body) <= 2, (key, language, len(body))


def test_japanese_and_english_have_the_same_messages():
    assert template_keys("ja") == template_keys("en")


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("{" * 80, 1),  # extension characters cost two septets
        ("{" * 81, 2),
        ("あ" * 70, 1),
        ("あ" * 71, 2),
        ("あ" * 134, 2),
        ("あ" * 135, 3),
        ("a" * 69 + "あ", 1),  # one Japanese character makes the whole message UCS-2
        ("a" * 70 + "あ", 2),
    ],
)
def test_it_counts_sms_segments_like_the_carriers(body, segments):
    assert sms_segments(body) == segments


def test_times_in_messages_are_the_households_local_time():
    new_year_eve = datetime(2024, 12, 31, 14, 30, tzinfo=UTC)
    assert format_since(new_year_eve, "Asia/Tokyo") == "12/31 23:30"
    assert format_since(new_year_eve, "Europe/London", "en") == "31 Dec 14:30"
