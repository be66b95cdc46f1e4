"""The area page warns staff of a stale data source; viewers are not shown it.

A source belongs to the deployment, not to an organisation (see ``queries.sees_operations``): so
admins and staff of every organisation see the warning, viewers of none.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlmodel import Session

from data.tables import Incident
from data.tables.incidents import IncidentStatus
from watch.source_health import SOURCE_STALE

BANNER = 'class="stale-sources"'
JAPANESE_LINE = "データ元「meter」：2025-01-06 07:00以降、取得に成功していません（2.0時間）"
ENGLISH_LINE = "Source meter: no successful pull since 2025-01-06 07:00 (2.0 h)"


@pytest.fixture
def stale_meter(engine, clock, wards) -> int:
    """The meter feed has not pulled for two hours (09:00 in Tokyo now, since 07:00)."""
    now = clock.now()
    with Session(engine) as session:
        incident = Incident(
            household_id=None,
            source="meter",
            kind=SOURCE_STALE,
            severity="alert",
            reason=f"no successful pull of source meter since {(now - timedelta(hours=2))}",
            opened_at=now - timedelta(minutes=30),
            since=now - timedelta(hours=2),
        )
        session.add(incident)
        session.commit()
        return incident.id


def _stale_lines(html: str) -> list[str]:
    return re.findall(r'<li class="stale-source">([^<]*)</li>', html)


def test_staff_see_the_stale_source_on_the_area_page_in_their_language(
    dashboard, as_user, stale_meter
):
    as_user("sato", role="staff")

    japanese = dashboard.get("/").text
    english = dashboard.get("/?lang=en").text

    assert BANNER in japanese and _stale_lines(japanese) == [JAPANESE_LINE]
    assert "データ取得が止まっています" in japanese
    assert _stale_lines(english) == [ENGLISH_LINE]


def test_admins_of_another_organisation_see_it_too(dashboard, as_user, stale_meter):
    as_user("south-admin", organisation_id="south", role="admin")

    assert _stale_lines(dashboard.get("/").text) == [JAPANESE_LINE]


def test_a_viewer_is_not_shown_the_stale_source(dashboard, as_user, stale_meter):
    as_user("guest", role="viewer")

    page = dashboard.get("/")

    assert page.status_code == 200 and "桜台" in page.text
    assert BANNER not in page.text and "meter" not in page.text


def test_a_resolved_source_incident_shows_no_banner(engine, dashboard, as_user, stale_meter):
    with Session(engine) as session:
        session.get(Incident, stale_meter).status = IncidentStatus.resolved
        session.commit()
    as_user("sato", role="staff")

    assert BANNER not in dashboard.get("/").text


def test_other_pages_and_the_api_still_work_beside_a_source_incident(
    dashboard, as_user, stale_meter, wards
):
    as_user("sato", role="admin")

    for path in ("/households/n1", f"/incidents/{wards.north_incident}", "/reports/2025-01"):
        assert dashboard.get(path).status_code == 200, path
    assert dashboard.get("/review").status_code == 200
    assert dashboard.get(f"/incidents/{stale_meter}").status_code == 404  # not a household's
    listed = dashboard.get("/api/households").json()
    assert [row["id"] for row in listed] == ["n1", "n2"]
