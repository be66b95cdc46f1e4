"""The Green Button (ESPI Atom) source against a local fake utility: pages, auth, 5xx, bad
readings, non-XML bodies, the cursor, and its settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from data.sources import read_cursor
from data.sources.green_button import GreenButtonSource
from data.sources.http_json import HttpFetcher
from data.tables import QuarantinedRow, Reading
from tests.fakes.fake_green_button import FakeGreenButton, Interval, UsagePoint, half_hours
from tests.watch.ops.conftest import NOW, count_readings
from watch.app import App
from watch.clock import FrozenClock
from watch.jobs import pull_all
from watch.settings import SettingsError, load_settings

DAY_START = NOW - timedelta(hours=6)


@pytest.fixture
def utility() -> Iterator[FakeGreenButton]:
    with FakeGreenButton(token="gb") as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _source(utility: FakeGreenButton, sleeps: list[float], *, token="gb", **options):
    fetcher = HttpFetcher(token=token, timeout_seconds=2, sleep=sleeps.append)
    return GreenButtonSource(name="green", url=utility.feed_url, fetcher=fetcher, **options)


def _readings(engine) -> list[tuple[str, str, float]]:  # noqa: ANN001
    with Session(engine) as session:
        rows = session.exec(
            select(Reading).order_by(Reading.household_id, Reading.interval_end)
        ).all()
    return [(r.household_id, r.interval_end.isoformat(), r.kwh) for r in rows]


def _count(engine, table) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_interval_readings_become_kwh_readings_ending_at_the_interval_end(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    make_resident("h2")
    utility.usage_points = [
        UsagePoint("h1", half_hours(DAY_START, [250, 1200])),
        # Deci-watt-hours: the value is scaled by powerOfTenMultiplier before kWh.
        UsagePoint("h2", half_hours(DAY_START, [3000]), power_of_ten_multiplier=-1),
    ]

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 3
    first_end = (DAY_START + timedelta(minutes=30)).isoformat()
    second_end = (DAY_START + timedelta(minutes=60)).isoformat()
    assert _readings(engine) == [
        ("h1", first_end, 0.25),
        ("h1", second_end, 1.2),
        ("h2", first_end, 0.3),
    ]
    assert read_cursor(engine, "green").cursor == second_end
    (request,) = utility.requests
    assert request.headers["Authorization"] == "Bearer gb"
    assert request.query["published-min"] == (NOW - timedelta(days=7)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def test_every_page_is_followed_and_a_block_after_its_reading_type_still_resolves(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    make_resident("h2")
    utility.page_size = 2  # UsagePoint+MeterReading | ReadingType+block | block+UsagePoint ...
    utility.block_size = 2
    utility.usage_points = [
        UsagePoint("h1", half_hours(DAY_START, [100, 200, 300, 400])),
        UsagePoint("h2", half_hours(DAY_START, [500, 600])),
    ]

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 6
    starts = [r.query.get("start-index") for r in utility.requests]
    assert starts == [None, "3", "5", "7", "9"]
    assert count_readings(engine) == 6
    assert report.files_rejected == []


def test_a_usage_point_is_mapped_to_its_household_by_title_id_or_link(
    engine, utility, sleeps, make_resident
):
    make_resident("H001")
    utility.usage_points = [UsagePoint("Main meter", half_hours(DAY_START, [100]))]

    report = _source(utility, sleeps, usage_points={"Main meter": "H001"}).pull(
        engine=engine, now=NOW
    )

    assert report.rows_inserted == 1 and _readings(engine)[0][0] == "H001"


def test_an_auth_failure_is_recorded_at_once_and_the_cursor_stays(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100]))]
    _source(utility, sleeps).pull(engine=engine, now=NOW - timedelta(hours=1))
    before = read_cursor(engine, "green")

    report = _source(utility, sleeps, token="expired").pull(engine=engine, now=NOW)

    assert report.failed and "authentication failed: HTTP 401" in report.error
    assert sleeps == []
    after = read_cursor(engine, "green")
    assert after.cursor == before.cursor and after.last_success_at == before.last_success_at
    assert (
        after.last_error.startswith("authentication failed") and "expired" not in after.last_error
    )


def test_server_errors_are_retried_with_backoff_then_the_pull_succeeds(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100, 200]))]
    utility.fail_next(2, status=503)

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and count_readings(engine) == 2
    assert len(utility.requests) == 3 and sleeps == [1.0, 2.0]


def test_a_server_down_for_every_try_is_an_error_and_the_next_pull_recovers(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100, 200]))]
    utility.fail_next(3)

    down = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert down.failed and "failed 3 times; last: HTTP 500" in down.error
    assert count_readings(engine) == 0 and read_cursor(engine, "green").cursor is None

    up = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not up.failed and count_readings(engine) == 2


def test_a_bad_interval_reading_is_quarantined_with_its_reason_and_the_rest_kept(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    start = int(DAY_START.timestamp())
    utility.usage_points = [
        UsagePoint(
            "h1",
            [
                Interval(start, 1800, 100),
                Interval(start + 1800, 1800, "lots"),
                Interval("yesterday", 1800, 100),
                Interval(start + 3600, 1800, None),
                Interval(start + 5400, 1800, -5),
                Interval(start + 7200, 1800, 300),
            ],
        )
    ]

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed
    assert report.rows_inserted == 2 and report.rows_quarantined == 4
    assert count_readings(engine) == 2
    with Session(engine) as session:
        reasons = [row.reason for row in session.exec(select(QuarantinedRow)).all()]
    assert len(reasons) == 4
    assert any("lots" in reason for reason in reasons)
    assert any("yesterday" in reason for reason in reasons)
    assert any("kwh is missing" in reason for reason in reasons)
    assert any("negative" in reason for reason in reasons)


def test_a_body_that_is_not_xml_is_a_recorded_error_and_the_next_pull_loses_nothing(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100, 200]))]
    utility.malformed_next()

    first = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert first.failed and "not Atom XML" in first.error and sleeps == []
    assert read_cursor(engine, "green").last_error.startswith("the body from")
    assert count_readings(engine) == 0

    second = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not second.failed and count_readings(engine) == 2


def test_xml_with_entity_expansion_is_refused(engine, utility, sleeps, make_resident):
    make_resident("h1")
    utility.replace_next(
        b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>&b;</title></feed>'
    )

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert report.failed and "not Atom XML" in report.error


def test_meter_readings_that_are_not_energy_used_are_skipped_and_named(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [
        UsagePoint("h1", half_hours(DAY_START, [100])),
        UsagePoint("h1", half_hours(DAY_START, [900]), flow_direction=19),  # sent to the grid
        UsagePoint("h1", half_hours(DAY_START, [7]), uom=38),  # watts, not watt-hours
    ]

    report = _source(utility, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 1
    assert [label.split(": ", 1)[1] for label in report.files_rejected] == [
        "flowDirection 19 is not energy delivered to the home",
        "uom 38 is not Wh (72)",
    ]


@pytest.mark.parametrize("server_filters", [True, False])
def test_a_second_pull_loads_only_the_new_intervals(
    engine, utility, sleeps, make_resident, server_filters
):
    make_resident("h1")
    utility.honour_published_min = server_filters
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100, 200, 300]))]
    source = _source(utility, sleeps)
    source.pull(engine=engine, now=NOW - timedelta(hours=1))
    cursor = read_cursor(engine, "green").cursor
    assert cursor == (DAY_START + timedelta(minutes=90)).isoformat()
    utility.usage_points[0].intervals += half_hours(DAY_START + timedelta(minutes=90), [400, 500])

    second = source.pull(engine=engine, now=NOW)

    assert utility.requests[-1].query["published-min"] == (
        DAY_START + timedelta(minutes=90)
    ).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert not second.failed and second.rows_inserted == 2
    assert (second.rows_corrected, second.rows_quarantined) == (0, 0)
    assert count_readings(engine) == 5
    assert (
        read_cursor(engine, "green").cursor
        == (DAY_START + timedelta(hours=2, minutes=30)).isoformat()
    )


def test_a_lookback_re_reads_recent_intervals_and_takes_a_correction(
    engine, utility, sleeps, make_resident
):
    make_resident("h1")
    utility.usage_points = [UsagePoint("h1", half_hours(DAY_START, [100, 200]))]
    source = _source(utility, sleeps, lookback=timedelta(hours=1))
    source.pull(engine=engine, now=NOW)
    utility.usage_points[0].intervals[1].value = 250  # the utility corrects the last interval

    again = source.pull(engine=engine, now=NOW)

    assert again.rows_inserted == 0 and again.rows_corrected == 1
    assert [kwh for *_, kwh in _readings(engine)] == [0.1, 0.25]


def test_a_green_button_source_in_toml_is_pulled_with_its_token_and_mapping(
    database, utility, tmp_path, monkeypatch, make_resident
):
    make_resident("H001")
    utility.usage_points = [UsagePoint("Main meter", half_hours(DAY_START, [100, 200]))]
    config = tmp_path / "areawatch.toml"
    config.write_text(
        f'database_url = "{database.url}"\n'
        f'[[sources]]\nname = "utility"\ntype = "green_button"\nurl = "{utility.feed_url}"\n'
        f'token_env = "GB_TOKEN"\ntimeout_seconds = 2\nlookback_minutes = 60\n'
        f'[sources.usage_points]\n"Main meter" = "H001"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("GB_TOKEN", "gb")
    settings = load_settings(config, environ={})
    app = App.from_settings(settings, clock=FrozenClock(NOW), channels={})

    (report,) = pull_all(app)

    assert not report.failed and report.rows_inserted == 2
    assert count_readings(database.engine) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('type = "green_button"\n', "needs url"),
        ('type = "green_button"\nurl = "http://x"\nkind = "tv"\n', "gives readings, not 'tv'"),
        ('type = "green_button"\nurl = "http://x"\nusage_points = { a = 1 }\n', "usage_points"),
        ('type = "green_button"\nurl = "http://x"\nlookback_minutes = -1\n', "lookback_minutes"),
    ],
)
def test_a_green_button_source_with_a_mistake_is_refused_with_the_reason(tmp_path, body, message):
    config = tmp_path / "areawatch.toml"
    config.write_text(f'[[sources]]\nname = "gb"\n{body}', encoding="utf-8")

    with pytest.raises(SettingsError, match=message):
        load_settings(config, environ={})
