"""The server-rendered pages: area list, household, incident, actions by form, languages."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from data.tables import Incident, ViewAudit
from watch.web.i18n import WORDS


def test_the_area_view_lists_flagged_households_first_in_japanese(dashboard, as_user, wards):
    as_user()
    page = dashboard.get("/")
    assert page.status_code == 200
    assert '<html lang="ja">' in page.text
    rows = re.findall(r'<tr class="status-(\w+)" data-household="(\w+)"', page.text)
    assert rows == [("alert", "n1"), ("normal", "n2")]
    assert "警報" in page.text and "鈴木" not in page.text


def test_the_area_view_filters_by_status(dashboard, as_user, wards):
    as_user()
    page = dashboard.get("/?status=alert")
    assert re.findall(r'data-household="(\w+)"', page.text) == ["n1"]


def test_english_is_chosen_by_query_and_remembered(dashboard, as_user, wards):
    as_user()
    page = dashboard.get("/?lang=en")
    assert '<html lang="en">' in page.text and "Alert" in page.text
    assert '<html lang="en">' in dashboard.get("/").text


def test_the_household_page_shows_chart_reasons_and_masked_contacts(
    engine, dashboard, as_user, wards
):
    as_user()
    page = dashboard.get("/households/n1").text
    assert "<svg" in page and 'class="band"' in page and 'class="incident"' in page
    assert "<li>the TV has not been on since yesterday</li>" in page
    assert "+81******0002" in page and "+819011110002" not in page
    with Session(engine) as session:
        assert [a.what for a in session.exec(select(ViewAudit))] == ["household"]


def test_acknowledging_and_resolving_by_form_updates_the_timeline(
    engine, dashboard, as_user, form_csrf, wards
):
    as_user()
    url = f"/incidents/{wards.north_incident}"
    page = dashboard.get(url).text
    token = form_csrf(page)
    assert 'id="acknowledge"' in page
    dashboard.post(f"{url}/acknowledge", data={"csrf_token": token})
    dashboard.post(f"{url}/notes", data={"csrf_token": token, "text": "娘さんに連絡"})
    response = dashboard.post(
        f"{url}/resolve", data={"csrf_token": token, "outcome": "fine", "note": ""}
    )
    assert response.status_code == 200  # followed the redirect back to the incident
    assert "問題なし" in response.text and "完了しました" in response.text
    assert re.findall(r'<tr class="event-(\w+)">', response.text) == [
        "acknowledged",
        "staff",
        "note",
        "resolved",
        "staff",
    ]
    assert 'id="resolve"' not in response.text
    with Session(engine) as session:
        assert session.get(Incident, wards.north_incident).outcome == "fine"


def test_a_viewer_sees_no_action_forms_and_cannot_post(dashboard, as_user, form_csrf, wards):
    as_user("guest", role="viewer")
    url = f"/incidents/{wards.north_incident}"
    page = dashboard.get(url).text
    assert 'id="acknowledge"' not in page
    response = dashboard.post(f"{url}/acknowledge", data={"csrf_token": form_csrf(page)})
    assert response.status_code == 403


def test_a_silence_can_be_added_from_the_household_page(dashboard, as_user, form_csrf, wards):
    as_user()
    token = form_csrf(dashboard.get("/households/n1").text)
    page = dashboard.post(
        "/households/n1/silences",
        data={"csrf_token": token, "reason": "入院中", "until": "2025-01-14"},
    ).text
    assert "入院中" in page and "一時停止中" in page


def test_every_word_has_both_languages():
    assert all(len(pair) == 2 and all(pair) for pair in WORDS.values())
