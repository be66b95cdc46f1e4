"""The JSON API: organisation isolation, household and incident detail, actions and audits."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from data.tables import Incident, IncidentEvent, Notification, Silence, ViewAudit


def test_staff_see_only_their_own_organisations_households(dashboard, as_user, wards):
    as_user()
    ids = [h["id"] for h in dashboard.get("/api/households").json()]
    assert sorted(ids) == ["n1", "n2"]


def test_another_organisations_household_and_incident_are_not_found(dashboard, as_user, wards):
    as_user()
    for path in [
        "/api/households/s1",
        "/api/incidents/{south}",
        "/households/s1",
        "/incidents/{south}",
    ]:
        response = dashboard.get(path.format(south=wards.south_incident))
        assert response.status_code == 404, path
        assert "鈴木" not in response.text


def test_acting_on_another_organisations_incident_is_not_found(engine, dashboard, as_user, wards):
    headers = as_user()
    for path, body in [
        ("/api/incidents/{south}/acknowledge", {}),
        ("/api/incidents/{south}/claim", {}),
        ("/api/incidents/{south}/resolve", {"outcome": "fine"}),
        ("/api/incidents/{south}/notes", {"text": "hi"}),
        ("/api/households/s1/silences", {"reason": "x", "ends_at": "2025-01-09T00:00:00Z"}),
    ]:
        url = path.format(south=wards.south_incident)
        response = dashboard.post(url, json=body, headers=headers)
        assert response.status_code == 404, path
    with Session(engine) as session:
        assert session.get(Incident, wards.south_incident).status == "open"
        assert session.exec(select(Silence)).all() == []
        assert (
            session.exec(
                select(IncidentEvent).where(IncidentEvent.incident_id == wards.south_incident)
            ).all()
            == []
        )


def test_another_organisations_incident_cannot_be_acted_on_by_form(
    dashboard, as_user, form_csrf, wards
):
    as_user()
    token = form_csrf(dashboard.get("/").text)
    for action, form in [("acknowledge", {}), ("resolve", {"outcome": "fine"})]:
        response = dashboard.post(
            f"/incidents/{wards.south_incident}/{action}", data={"csrf_token": token, **form}
        )
        assert response.status_code == 404


def test_the_list_puts_alerts_first_with_their_reason(dashboard, as_user, wards):
    as_user()
    first, second = dashboard.get("/api/households").json()
    assert (first["id"], first["status"]) == ("n1", "alert")
    assert first["reason"] == "no electricity use for 14 hours"
    assert first["open_incident_ids"] == [wards.north_incident]
    assert (second["id"], second["status"]) == ("n2", "normal")


def test_the_list_filters_by_status_and_area(dashboard, as_user, wards):
    as_user()
    assert [h["id"] for h in dashboard.get("/api/households?status=normal").json()] == ["n2"]
    assert [h["id"] for h in dashboard.get("/api/households?area=桜台").json()] == ["n1"]


def test_household_detail_has_usage_band_reasons_and_masked_contacts(
    engine, dashboard, as_user, wards
):
    as_user()
    detail = dashboard.get("/api/households/n1").json()
    assert len(detail["usage"]) == 14 * 48
    assert detail["current_reasons"] == [
        "no electricity use for 14 hours",
        "the TV has not been on since yesterday",
    ]
    # The last 14 hours are empty; before that the usual band matches the steady rhythm.
    assert all(s["kwh"] is None for s in detail["usage"][-28:])
    banded = [s for s in detail["usage"] if s["band_low"] is not None]
    assert len(banded) > 13 * 48
    assert all(s["band_low"] <= s["band_high"] for s in banded)
    assert {(s["band_low"], s["band_high"]) for s in banded} <= {(0.3, 0.3), (0.1, 0.1)}
    phones = [c["phone"] for c in detail["contacts"]]
    assert phones == ["+81******0001", "+81******0002", "+81******0003"]
    assert [i["id"] for i in detail["incidents"]] == [wards.north_incident]
    with Session(engine) as session:
        audits = session.exec(select(ViewAudit)).all()
    assert [(a.household_id, a.what) for a in audits] == [("n1", "household_api")]


def test_admins_see_full_phone_numbers(dashboard, as_user, wards):
    as_user("boss", role="admin")
    phones = [c["phone"] for c in dashboard.get("/api/households/n1").json()["contacts"]]
    assert phones[0] == "+819011110001"


def test_incident_view_is_audited_and_shows_the_timeline(engine, dashboard, as_user, wards):
    headers = as_user()
    dashboard.post(
        f"/api/incidents/{wards.north_incident}/notes", json={"text": "電話した"}, headers=headers
    )
    detail = dashboard.get(f"/api/incidents/{wards.north_incident}").json()
    assert detail["household_id"] == "n1"
    assert [(e["kind"], e["who"], e["detail"]["text"]) for e in detail["timeline"]] == [
        ("note", "sato", "電話した")
    ]
    with Session(engine) as session:
        audit = session.exec(select(ViewAudit)).one()
    assert (audit.incident_id, audit.what) == (wards.north_incident, "incident_api")


def _events(engine, incident_id: int) -> list[tuple[str, dict]]:
    with Session(engine) as session:
        rows = session.exec(
            select(IncidentEvent)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(IncidentEvent.id)
        )
        return [(e.kind, e.detail) for e in rows]


def test_acknowledge_then_resolve_records_who_did_it(engine, dashboard, as_user, wards):
    headers = as_user()
    url = f"/api/incidents/{wards.north_incident}"
    response = dashboard.post(f"{url}/acknowledge", headers=headers)
    assert response.json() == {"done": True, "status": "acknowledged"}
    response = dashboard.post(
        f"{url}/resolve", json={"outcome": "needed_help", "note": "救急搬送"}, headers=headers
    )
    assert response.json() == {"done": True, "status": "resolved"}
    events = _events(engine, wards.north_incident)
    assert [k for k, _ in events] == ["acknowledged", "staff", "resolved", "staff"]
    assert events[1][1] == {"user": "sato", "action": "acknowledged"}
    assert events[2][1]["note"] == "救急搬送"
    assert events[3][1] == {"user": "sato", "action": "resolved", "outcome": "needed_help"}
    # Resolving twice is refused, not repeated.
    again = dashboard.post(f"{url}/resolve", json={"outcome": "fine"}, headers=headers)
    assert again.status_code == 409


def test_claim_defaults_to_the_households_staff_contact(engine, dashboard, as_user, wards):
    headers = as_user()
    response = dashboard.post(
        f"/api/incidents/{wards.north_incident}/claim", json={}, headers=headers
    )
    assert response.json()["status"] == "claimed"
    staff_contact = wards.north_contacts[2]
    with Session(engine) as session:
        assert session.get(Incident, wards.north_incident).claimed_by_contact_id == staff_contact.id
    assert _events(engine, wards.north_incident)[-1][1] == {
        "user": "sato",
        "action": "claimed",
        "claimant_id": staff_contact.id,
    }


def test_claim_refuses_a_contact_of_another_household(dashboard, as_user, wards):
    headers = as_user()
    response = dashboard.post(
        f"/api/incidents/{wards.north_incident}/claim", json={"contact_id": 999}, headers=headers
    )
    assert response.status_code == 409


def test_an_unknown_outcome_is_rejected(dashboard, as_user, wards):
    headers = as_user()
    response = dashboard.post(
        f"/api/incidents/{wards.north_incident}/resolve", json={"outcome": "meh"}, headers=headers
    )
    assert response.status_code == 422


def test_a_silence_mutes_the_household_and_is_audited(engine, dashboard, as_user, clock, wards):
    headers = as_user()
    ends = (clock.now() + timedelta(days=3)).isoformat()
    response = dashboard.post(
        "/api/households/n1/silences", json={"reason": "入院", "ends_at": ends}, headers=headers
    )
    assert response.status_code == 200
    with Session(engine) as session:
        silence = session.exec(select(Silence)).one()
    assert (silence.created_by, silence.reason) == ("sato", "入院")
    assert dashboard.get("/api/households/n1").json()["status"] == "silenced"
    assert _events(engine, wards.north_incident)[-1][1]["action"] == "silenced"


def test_viewers_can_read_but_not_act(engine, dashboard, as_user, wards):
    headers = as_user("guest", role="viewer")
    assert dashboard.get(f"/api/incidents/{wards.north_incident}").status_code == 200
    for action, body in [("acknowledge", {}), ("resolve", {"outcome": "fine"})]:
        response = dashboard.post(
            f"/api/incidents/{wards.north_incident}/{action}", json=body, headers=headers
        )
        assert response.status_code == 403
    with Session(engine) as session:
        assert session.get(Incident, wards.north_incident).status == "open"
        assert session.exec(select(Notification)).all() == []


def test_the_api_is_described_in_the_openapi_schema(dashboard):
    paths = dashboard.get("/api/openapi.json").json()["paths"]
    for path in [
        "/api/households",
        "/api/households/{household_id}",
        "/api/incidents/{incident_id}",
        "/api/incidents/{incident_id}/resolve",
        "/api/households/{household_id}/silences",
    ]:
        assert path in paths
    assert "/login" not in paths
