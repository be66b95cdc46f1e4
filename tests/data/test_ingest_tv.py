from datetime import UTC, datetime

from sqlmodel import Session, select

from data.ingest import ingest_tv
from data.tables import TvEvent

HEADER = ["household_id", "timestamp", "event", "channel"]


def stored_events(engine) -> list[tuple]:
    with Session(engine) as session:
        events = session.exec(select(TvEvent).order_by(TvEvent.at, TvEvent.event)).all()
    return [(e.household_id, e.at, e.event, e.channel) for e in events]


def test_tv_events_are_stored_once_however_often_they_are_sent(
    engine, make_household, make_csv, now
):
    make_household("h1")
    path = make_csv(
        "tv.csv",
        HEADER,
        [
            ["h1", "2025-01-05T07:00:00+09:00", "power_on", ""],
            ["h1", "2025-01-05T07:01:00+09:00", "channel", "NHK"],
            ["h1", "2025-01-05T07:01:00+09:00", "key", ""],
        ],
    )
    first = ingest_tv(engine=engine, path=path, now=now)
    second = ingest_tv(engine=engine, path=path, now=now)

    assert (first.rows_inserted, first.households) == (3, {"h1"})
    assert (second.rows_inserted, second.rows_unchanged) == (0, 3)
    assert stored_events(engine) == [
        ("h1", datetime(2025, 1, 4, 22, 0, tzinfo=UTC), "power_on", None),
        ("h1", datetime(2025, 1, 4, 22, 1, tzinfo=UTC), "channel", "NHK"),
        ("h1", datetime(2025, 1, 4, 22, 1, tzinfo=UTC), "key", None),
    ]


def test_the_channel_column_is_optional(engine, make_household, make_csv, now):
    make_household("h1")
    path = make_csv(
        "tv.csv", ["household_id", "timestamp", "event"], [["h1", "2025-01-05T00:00Z", "power_off"]]
    )
    assert ingest_tv(engine=engine, path=path, now=now).rows_inserted == 1


def test_bad_tv_rows_are_quarantined_with_their_reason(engine, make_household, make_csv, now):
    make_household("h1")
    path = make_csv(
        "tv.csv",
        HEADER,
        [
            ["h1", "2025-01-05T00:00:00Z", "reboot", ""],  # line 2
            ["h9", "2025-01-05T00:00:00Z", "power_on", ""],  # 3
            ["h1", "2025-01-05T09:00:00", "power_on", ""],  # 4: no offset, no tz
            ["h1", "2025-01-07T00:00:00Z", "power_on", ""],  # 5: future
            ["h1", "2025-01-05T00:10:00Z", "channel", "1"],  # 6: conflicts with 7
            ["h1", "2025-01-05T00:10:00Z", "channel", "2"],  # 7
            ["h1", "2025-01-05T00:20:00Z", "power_on", ""],  # 8: good
        ],
    )
    report = ingest_tv(engine=engine, path=path, now=now)

    reasons = {line.line_number: line.reason for line in report.quarantined}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert "unknown event 'reboot'" in reasons[2]
    assert "unknown household 'h9'" in reasons[3]
    assert "no UTC offset" in reasons[4]
    assert "future" in reasons[5]
    assert "different channels" in reasons[6] and "different channels" in reasons[7]
    assert [event[2] for event in stored_events(engine)] == ["power_on"]


def test_naive_tv_times_are_read_in_the_zone_given(engine, make_household, make_csv, now):
    make_household("h1")
    path = make_csv("tv.csv", HEADER, [["h1", "2025-01-05T09:00:00", "power_on", ""]])
    ingest_tv(engine=engine, path=path, now=now, tz="Asia/Tokyo")
    assert stored_events(engine)[0][1] == datetime(2025, 1, 5, 0, 0, tzinfo=UTC)
