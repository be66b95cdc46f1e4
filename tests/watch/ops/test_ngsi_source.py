"""The NGSI v2 source against a local fake Orion: entities, paging, auth, bad bodies, the cursor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session, func, select

from data.sources import read_cursor
from data.sources.http_json import HttpFetcher
from data.sources.ngsi import NgsiV2Source
from data.tables import QuarantinedRow, Reading
from tests.fakes.fake_meter_api import FakeMeterApi
from tests.watch.ops.conftest import NOW, count_readings

JST = "+09:00"


@pytest.fixture
def orion() -> Iterator[FakeMeterApi]:
    with FakeMeterApi(token="tok", service="areawatch") as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _source(orion: FakeMeterApi, sleeps: list[float], *, token="tok", **options) -> NgsiV2Source:
    fetcher = HttpFetcher(token=token, timeout_seconds=2, sleep=sleeps.append)
    return NgsiV2Source(
        name="orion",
        url=orion.base_url,
        entity_type="SmartMeter",
        attribute="energyConsumed",
        fiware_service="areawatch",
        fetcher=fetcher,
        **options,
    )


def _meter(household: str, observed: str, kwh: object = 0.25, **extra) -> dict:
    return {
        "id": f"urn:ngsi-ld:SmartMeter:{household}",
        "type": "SmartMeter",
        "householdId": household,
        "energyConsumed": kwh,
        "dateObserved": observed,
        **extra,
    }


def _residents(make_resident, count: int) -> list[str]:
    names = [f"H{n:03d}" for n in range(1, count + 1)]
    for name in names:
        make_resident(name)
    return names


def test_each_meter_entity_becomes_one_reading(engine, orion, sleeps, make_resident):
    _residents(make_resident, 2)
    orion.entities = [
        _meter("H001", "2025-01-06T08:30:00" + JST, 0.21),
        _meter("H002", "2025-01-06T09:00:00" + JST, 0.34),
        {"id": "urn:ngsi-ld:Other:1", "type": "WeatherObserved", "dateObserved": "x"},
    ]

    report = _source(orion, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and report.rows_inserted == 2
    with Session(engine) as session:
        rows = session.exec(select(Reading).order_by(Reading.household_id)).all()
    assert [(r.household_id, r.kwh) for r in rows] == [("H001", 0.21), ("H002", 0.34)]
    assert read_cursor(engine, "orion").cursor == NOW.isoformat()
    (request,) = orion.requests
    assert request.path == "/v2/entities"
    assert request.query == {
        "type": "SmartMeter",
        "options": "keyValues",
        "limit": "100",
        "offset": "0",
    }
    assert request.headers["Fiware-Service"] == "areawatch"
    assert request.headers["Fiware-ServicePath"] == "/"


def test_entities_are_paged_with_offset_until_a_short_page(engine, orion, sleeps, make_resident):
    names = _residents(make_resident, 5)
    orion.entities = [_meter(name, "2025-01-06T09:00:00" + JST) for name in names]

    report = _source(orion, sleeps, page_size=2).pull(engine=engine, now=NOW)

    assert [r.query["offset"] for r in orion.requests] == ["0", "2", "4"]
    assert report.rows_inserted == 5 and count_readings(engine) == 5


def test_a_refused_token_is_recorded_and_loads_nothing(engine, orion, sleeps, make_resident):
    _residents(make_resident, 1)
    orion.entities = [_meter("H001", "2025-01-06T09:00:00" + JST)]

    report = _source(orion, sleeps, token="stale").pull(engine=engine, now=NOW)

    assert report.failed and "authentication failed" in report.error
    assert len(orion.requests) == 1 and count_readings(engine) == 0
    assert read_cursor(engine, "orion").last_error_at == NOW


def test_a_broker_error_is_retried_then_the_pull_succeeds(engine, orion, sleeps, make_resident):
    _residents(make_resident, 1)
    orion.entities = [_meter("H001", "2025-01-06T09:00:00" + JST)]
    orion.fail_next(1)

    report = _source(orion, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed and count_readings(engine) == 1
    assert len(orion.requests) == 2 and sleeps == [1.0]


def test_bad_entities_are_quarantined_and_good_ones_kept(engine, orion, sleeps, make_resident):
    _residents(make_resident, 2)
    orion.entities = [
        _meter("H001", "2025-01-06T09:00:00" + JST, 0.2),
        _meter("H002", "2025-01-06T09:00:00" + JST, "n/a"),
        _meter("H999", "2025-01-06T09:00:00" + JST, 0.1),
        {"id": "urn:ngsi-ld:SmartMeter:H002", "type": "SmartMeter"},
    ]

    report = _source(orion, sleeps).pull(engine=engine, now=NOW)

    assert not report.failed
    assert report.rows_inserted == 1 and report.rows_quarantined == 3
    assert count_readings(engine) == 1
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(QuarantinedRow)).one() == 3


def test_a_body_that_is_not_json_is_an_error_and_the_next_pull_loses_nothing(
    engine, orion, sleeps, make_resident
):
    _residents(make_resident, 1)
    orion.entities = [_meter("H001", "2025-01-06T09:00:00" + JST)]
    orion.malformed_next(1)

    first = _source(orion, sleeps).pull(engine=engine, now=NOW)

    assert first.failed and "not JSON" in first.error and count_readings(engine) == 0
    assert read_cursor(engine, "orion").cursor is None

    second = _source(orion, sleeps).pull(engine=engine, now=NOW)

    assert not second.failed and count_readings(engine) == 1


def test_a_second_pull_records_only_meters_observed_since_the_cursor(
    engine, orion, sleeps, make_resident
):
    _residents(make_resident, 2)
    orion.entities = [
        _meter("H001", "2025-01-06T08:30:00" + JST),
        _meter("H002", "2025-01-06T08:30:00" + JST),
    ]
    source = _source(orion, sleeps)
    source.pull(engine=engine, now=NOW - timedelta(minutes=20))
    orion.entities[0] = _meter("H001", "2025-01-06T09:00:00" + JST, 0.4)

    second = source.pull(engine=engine, now=NOW)

    assert second.rows_inserted == 1 and second.files_loaded == ["1 of 2 entities"]
    assert count_readings(engine) == 3
    assert read_cursor(engine, "orion").cursor == NOW.isoformat()


def test_an_unchanged_broker_changes_nothing_on_the_next_pull(engine, orion, sleeps, make_resident):
    _residents(make_resident, 1)
    orion.entities = [_meter("H001", "2025-01-06T09:00:00" + JST)]
    source = _source(orion, sleeps, lookback=timedelta(hours=1))
    source.pull(engine=engine, now=NOW)

    again = source.pull(engine=engine, now=NOW)

    assert not again.failed
    assert (again.rows_inserted, again.rows_corrected, again.rows_quarantined) == (0, 0, 0)
    assert count_readings(engine) == 1
