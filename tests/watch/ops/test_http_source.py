"""The HTTP JSON source against a local fake API: pages, retries, auth, bad bodies, the cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from data.sources import read_cursor
from data.sources.http_json import HttpFetcher, HttpJsonSource
from data.tables import QuarantinedRow, Reading, TvEvent
from tests.fakes.fake_meter_api import FakeMeterApi
from tests.watch.ops.conftest import NOW, count_readings
from watch.app import App
from watch.clock import FrozenClock
from watch.jobs import pull_all
from watch.settings import SettingsError, load_settings


@pytest.fixture
def api() -> Iterator[FakeMeterApi]:
    with FakeMeterApi(token="tok") as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _source(api: FakeMeterApi, sleeps: list[float], *, token="tok", kind="readings", **options):
    fetcher = HttpFetcher(
        token=token, timeout_seconds=options.pop("timeout", 2), sleep=sleeps.append
    )
    path = "/readings" if kind == "readings" else "/events"
    return HttpJsonSource(
        name="meter-api", kind=kind, url=api.base_url + path, fetcher=fetcher, **options
    )


def _readings(household: str, count: int, end=NOW) -> list[dict]:
    return [
        {
            "household_id": household,
            "timestamp": (end - timedelta(minutes=30 * i)).isoformat(),
            "kwh": round(0.1 + i / 100, 2),
        }
        for i in range(count)
    ]


def _count(engine, table) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(table)).one()


def test_a_pull_loads_the_readings_and_moves_the_cursor_to_the_newest(
    engine, api, sleeps, make_resident
):
    make_resident("h1")
    api.readings = _readings("h1", 4, NOW - timedelta(hours=1))

    report = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 4
    assert count_readings(engine) == 4
    assert read_cursor(engine, "meter-api").cursor == (NOW - timedelta(hours=1)).isoformat()
    (request,) = api.requests
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.query["since"] == (NOW - timedelta(days=7)).isoformat()
    assert request.query["page"] == "1"


def test_tv_events_are_pulled_from_the_events_list(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.events = [
        {
            "household_id": "h1",
            "timestamp": "2025-01-05T20:00:00+09:00",
            "event": "power_on",
            "channel": "4",
        },
        {
            "household_id": "h1",
            "timestamp": "2025-01-05T22:00:00+09:00",
            "event": "power_off",
            "channel": None,
        },
    ]

    report = _source(api, sleeps, kind="tv").pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 2
    assert _count(engine, TvEvent) == 2


def test_every_page_is_fetched_and_loaded(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.readings = _readings("h1", 5)

    report = _source(api, sleeps, page_size=2).pull(engine=engine, now=NOW)

    assert [r.query["page"] for r in api.requests] == ["1", "2", "3"]
    assert report.files_loaded == ["page 1", "page 2", "page 3"]
    assert count_readings(engine) == 5
    assert read_cursor(engine, "meter-api").cursor == NOW.isoformat()


def test_an_auth_failure_is_recorded_at_once_and_loads_nothing(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.readings = _readings("h1", 3)

    report = _source(api, sleeps, token="wrong").pull(engine=engine, now=NOW)

    assert report.failed and "authentication failed: HTTP 401" in report.error
    assert len(api.requests) == 1 and sleeps == []
    assert count_readings(engine) == 0
    cursor = read_cursor(engine, "meter-api")
    assert cursor.last_error.startswith("authentication failed") and cursor.cursor is None
    assert "wrong" not in cursor.last_error


def test_server_errors_are_retried_with_growing_waits_then_the_pull_succeeds(
    engine, api, sleeps, make_resident
):
    make_resident("h1")
    api.readings = _readings("h1", 3)
    api.fail_next(2)

    report = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and count_readings(engine) == 3
    assert len(api.requests) == 3 and sleeps == [1.0, 2.0]


def test_a_hung_server_times_out_and_is_retried(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.readings = _readings("h1", 2)
    api.hang_next(1)

    report = _source(api, sleeps, timeout=0.3).pull(engine=engine, now=NOW)

    assert not report.failed and count_readings(engine) == 2
    assert len(api.requests) == 2


def test_a_server_down_for_every_try_is_an_error_and_the_cursor_stays(
    engine, api, sleeps, make_resident
):
    make_resident("h1")
    api.readings = _readings("h1", 2)
    api.fail_next(3, status=503)

    report = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert report.failed and "failed 3 times; last: HTTP 503" in report.error
    assert count_readings(engine) == 0
    assert read_cursor(engine, "meter-api").cursor is None


def test_bad_records_are_quarantined_and_the_good_ones_kept(engine, api, sleeps, make_resident):
    make_resident("h1")
    good = _readings("h1", 2)
    bad = [
        {"household_id": "h1", "timestamp": "yesterday", "kwh": 0.3},
        {"household_id": "h1", "timestamp": (NOW - timedelta(hours=3)).isoformat(), "kwh": -1},
        {"household_id": "h1"},
        "not an object",
    ]
    api.replace_next({"readings": [*good, *bad], "next_page": None})

    report = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed
    assert report.rows_inserted == 2 and report.rows_quarantined == 4
    assert count_readings(engine) == 2 and _count(engine, QuarantinedRow) == 4


def test_a_body_that_is_not_json_is_an_error_and_the_next_pull_loses_nothing(
    engine, api, sleeps, make_resident
):
    make_resident("h1")
    api.readings = _readings("h1", 4)
    api.malformed_next(1)

    first = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert first.failed and "not JSON" in first.error and sleeps == []
    assert count_readings(engine) == 0
    assert read_cursor(engine, "meter-api").last_error.startswith("the body from")

    second = _source(api, sleeps).pull(engine=engine, now=NOW)

    assert not second.failed and count_readings(engine) == 4


def test_a_bad_second_page_keeps_the_first_page_and_resumes_after_it(
    engine, api, sleeps, make_resident
):
    make_resident("h1")
    api.readings = _readings("h1", 4)
    first_page_newest = (NOW - timedelta(hours=1)).isoformat()
    source = _source(api, sleeps, page_size=2)
    api.replace_next({"readings": api.readings[2:], "next_page": 2})  # oldest two, page 1
    api.replace_next({"wrong": []})

    first = source.pull(engine=engine, now=NOW)

    assert first.failed and "has no 'readings' list" in first.error
    assert count_readings(engine) == 2
    assert read_cursor(engine, "meter-api").cursor == first_page_newest

    second = source.pull(engine=engine, now=NOW)

    assert not second.failed and second.rows_inserted == 2
    assert api.requests[-1].query["since"] == first_page_newest
    assert count_readings(engine) == 4


def test_a_second_pull_asks_only_for_newer_readings(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.readings = _readings("h1", 3, NOW - timedelta(hours=2))
    source = _source(api, sleeps)
    source.pull(engine=engine, now=NOW - timedelta(hours=1))
    api.readings += _readings("h1", 2, NOW)

    second = source.pull(engine=engine, now=NOW)

    assert api.requests[-1].query["since"] == (NOW - timedelta(hours=2)).isoformat()
    assert second.rows_inserted == 2 and count_readings(engine) == 5


def test_a_re_sent_page_changes_nothing(engine, api, sleeps, make_resident):
    make_resident("h1")
    api.readings = _readings("h1", 3)
    source = _source(api, sleeps)
    source.pull(engine=engine, now=NOW)
    api.replace_next({"readings": api.readings, "next_page": None})

    again = source.pull(engine=engine, now=NOW)

    assert not again.failed
    assert (again.rows_inserted, again.rows_corrected, again.rows_quarantined) == (0, 0, 0)
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Reading)).one() == 3
    assert read_cursor(engine, "meter-api").cursor == NOW.isoformat()


def test_sources_configured_in_toml_are_pulled_with_the_token_from_the_environment(
    database, api, tmp_path, monkeypatch, make_resident
):
    make_resident("h1")
    make_resident("H002")
    api.readings = _readings("h1", 2)
    api.service = "tenant"
    api.entities = [
        {
            "id": "urn:ngsi-ld:SmartMeter:H002",
            "type": "SmartMeter",
            "householdId": "H002",
            "power": 0.5,
            "dateObserved": "2025-01-06T08:30:00+09:00",
        }
    ]
    config = tmp_path / "areawatch.toml"
    config.write_text(
        f'database_url = "{database.url}"\n'
        f'[[sources]]\nname = "api"\ntype = "http_json"\nkind = "readings"\n'
        f'url = "{api.base_url}/readings"\ntoken_env = "METER_TOKEN"\npage_size = 1\n'
        f"timeout_seconds = 2\n"
        f'[[sources]]\nname = "orion"\ntype = "ngsi_v2"\nurl = "{api.base_url}"\n'
        f'token_env = "METER_TOKEN"\nentity_type = "SmartMeter"\nattribute = "power"\n'
        f'fiware_service = "tenant"\n'
        f'[[sources]]\nname = "no-token"\ntype = "http_json"\nkind = "tv"\n'
        f'url = "{api.base_url}/events"\ntoken_env = "UNSET_TOKEN"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("METER_TOKEN", "tok")
    monkeypatch.delenv("UNSET_TOKEN", raising=False)
    settings = load_settings(config, environ={"METER_TOKEN": "tok"})
    app = App.from_settings(settings, clock=FrozenClock(NOW), channels={})

    http, ngsi, missing = pull_all(app)

    assert not http.failed and http.files_loaded == ["page 1", "page 2"]
    assert not ngsi.failed and ngsi.rows_inserted == 1
    assert missing.failed and "UNSET_TOKEN" in missing.error
    assert count_readings(database.engine) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('type = "http_json"\nkind = "readings"\n', "needs url"),
        ('type = "http_json"\nkind = "readings"\nurl = "ftp://x"\n', "url must start with"),
        ('type = "ngsi_v2"\nkind = "tv"\nurl = "http://x"\n', "gives readings, not 'tv'"),
        ('type = "ngsi_v2"\nurl = "http://x"\npage_size = 0\n', "page_size must be"),
        ('type = "soap"\nkind = "readings"\nurl = "http://x"\n', "'ngsi_v2' or 'green_button'"),
    ],
)
def test_a_remote_source_with_a_mistake_is_refused_with_the_reason(tmp_path, body, message):
    config = tmp_path / "areawatch.toml"
    config.write_text(f'[[sources]]\nname = "api"\n{body}', encoding="utf-8")

    with pytest.raises(SettingsError, match=message):
        load_settings(config, environ={})
