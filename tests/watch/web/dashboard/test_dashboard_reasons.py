"""Pages show a detector's reason in the page's language: Japanese by default, as the detector
wrote it on the English page. The JSON API keeps the detector's words."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from data.tables import Finding, Household, Incident
from tests.watch.web.test_reasons import SAID
from watch.web.reasons import localise_reason

# Real words of the detectors (made by running them, see tests/watch/web/test_reasons.py).
QUIET = SAID["history, stuck load"]
OUTAGE = SAID["outage"]


@pytest.fixture
def explained(engine, clock, wards) -> None:
    """North's incident and a newer finding carry what the detectors really say."""
    with Session(engine) as session:
        session.get(Incident, wards.north_incident).reason = QUIET
        session.add(
            Finding(
                household_id="n1",
                kind="inactivity",
                severity="alert",
                score=4.2,
                reason=QUIET,
                fired_at=clock.now() - timedelta(hours=1),
                incident_id=wards.north_incident,
            )
        )
        session.commit()


def test_the_japanese_household_page_shows_each_reason_in_japanese(dashboard, as_user, explained):
    as_user()

    page = dashboard.get("/households/n1").text

    for clause in QUIET.split("; "):
        assert f"<li>{localise_reason(clause, 'ja')}</li>" in page
        assert clause not in page
    assert localise_reason(QUIET, "ja") in page  # the incidents table


def test_the_english_household_page_shows_the_detectors_words(dashboard, as_user, explained):
    as_user()

    page = dashboard.get("/households/n1?lang=en").text

    for clause in QUIET.split("; "):
        assert f"<li>{clause}</li>" in page
    assert "活動がありません" not in page


def test_the_incident_page_and_the_area_list_follow_the_language(
    dashboard, as_user, explained, wards
):
    as_user()
    url = f"/incidents/{wards.north_incident}"

    assert localise_reason(QUIET, "ja") in dashboard.get(url).text
    assert localise_reason(QUIET, "ja") in dashboard.get("/").text
    assert QUIET in dashboard.get(f"{url}?lang=en").text
    assert QUIET in dashboard.get("/?lang=en").text


def test_an_outage_reason_on_the_area_list_reads_in_japanese(engine, dashboard, as_user, clock):
    with Session(engine) as session:
        session.add(
            Incident(
                household_id="n2",
                kind="outage",
                severity="alert",
                reason=OUTAGE,
                opened_at=clock.now() - timedelta(hours=1),
            )
        )
        session.commit()
    as_user()

    page = dashboard.get("/").text

    assert localise_reason(OUTAGE, "ja") in page and "メーターのデータが届いていません" in page


def test_the_api_keeps_the_detectors_words(dashboard, as_user, explained):
    as_user()

    detail = dashboard.get("/api/households/n1", params={"lang": "ja"}).json()

    assert detail["reason"] == QUIET
    assert detail["current_reasons"] == QUIET.split("; ")


def test_the_map_popup_gets_the_reason_in_the_pages_language(engine, dashboard, as_user, explained):
    with Session(engine) as session:
        household = session.get(Household, "n1")
        household.lat, household.lon = 36.0101, 139.0001
        session.commit()
    as_user()

    def n1(params: dict) -> dict:
        body = dashboard.get("/api/map", params=params).json()
        (point,) = [f for f in body["features"] if f["properties"].get("id") == "n1"]
        return point["properties"]

    japanese, english = n1({"lang": "ja"}), n1({"lang": "en"})

    assert japanese["reason"] == QUIET and japanese["reason_localised"] == localise_reason(
        QUIET, "ja"
    )
    assert english["reason"] == english["reason_localised"] == QUIET
