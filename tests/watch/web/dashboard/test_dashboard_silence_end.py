"""Ending a silence early from the dashboard: the household page's button and the API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from data.tables import Household, IncidentEvent, Silence


@pytest.fixture
def make_silence(engine, clock):
    def make(household_id: str = "n1", starts_in: timedelta = timedelta(hours=-1)) -> int:
        now = clock.now()
        silence = Silence(
            household_id=household_id,
            reason="in hospital",
            starts_at=now + starts_in,
            ends_at=now + timedelta(days=5),
            created_by="suzuki",
            created_at=now,
        )
        with Session(engine) as session:
            session.add(silence)
            session.commit()
            return silence.id

    return make


def _silence(engine, silence_id: int) -> Silence:
    with Session(engine) as session:
        return session.get(Silence, silence_id)


def _staff_events(engine, incident_id: int) -> list[dict]:
    with Session(engine) as session:
        events = session.exec(
            select(IncidentEvent).where(
                IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "staff"
            )
        ).all()
        return [e.detail for e in events]


def test_staff_end_an_active_silence_from_the_household_page(
    engine, clock, dashboard, as_user, form_csrf, make_silence, wards
):
    silence_id = make_silence()
    as_user()
    page = dashboard.get("/households/n1").text
    assert f'id="end-silence-{silence_id}"' in page
    response = dashboard.post(
        f"/households/n1/silences/{silence_id}/end",
        data={"csrf_token": form_csrf(page)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    silence = _silence(engine, silence_id)
    assert silence.ended_early_at == clock.now()
    assert silence.ended_reason == "ended early by sato"
    assert {"user": "sato", "action": "silence_ended", "silence_id": silence_id} in _staff_events(
        engine, wards.north_incident
    )
    after = dashboard.get("/households/n1").text
    assert f'id="end-silence-{silence_id}"' not in after
    assert "ended early by sato" in after


def test_the_end_button_needs_the_forms_csrf_token(engine, dashboard, as_user, make_silence):
    silence_id = make_silence()
    as_user()
    response = dashboard.post(
        f"/households/n1/silences/{silence_id}/end", data={"csrf_token": "forged"}
    )
    assert response.status_code == 403
    assert _silence(engine, silence_id).ended_early_at is None


def test_the_api_ends_a_pending_silence_and_refuses_a_second_time(
    engine, dashboard, as_user, make_silence
):
    silence_id = make_silence(starts_in=timedelta(days=1))
    headers = as_user()
    url = f"/api/households/n1/silences/{silence_id}/end"
    assert dashboard.post(url).status_code == 403  # no CSRF header
    first = dashboard.post(url, headers=headers)
    assert first.status_code == 200 and first.json() == {"done": True, "status": "ended"}
    assert dashboard.post(url, headers=headers).status_code == 409
    assert _silence(engine, silence_id).ended_early_at is not None
    assert f'id="end-silence-{silence_id}"' not in dashboard.get("/households/n1").text


def test_staff_of_another_organisation_cannot_end_a_silence(
    engine, dashboard, as_user, form_csrf, make_silence, wards
):
    south_silence = make_silence("s1")
    headers = as_user()
    token = form_csrf(dashboard.get("/").text)
    assert (
        dashboard.post(
            f"/api/households/s1/silences/{south_silence}/end", headers=headers
        ).status_code
        == 404
    )
    # Nor through a household of their own: the silence must belong to the household named.
    assert (
        dashboard.post(
            f"/api/households/n1/silences/{south_silence}/end", headers=headers
        ).status_code
        == 404
    )
    assert (
        dashboard.post(
            f"/households/s1/silences/{south_silence}/end", data={"csrf_token": token}
        ).status_code
        == 404
    )
    assert _silence(engine, south_silence).ended_early_at is None


def test_viewers_see_no_end_button_and_cannot_end_a_silence(
    engine, dashboard, as_user, make_silence
):
    silence_id = make_silence()
    headers = as_user("kato", role="viewer")
    assert f'id="end-silence-{silence_id}"' not in dashboard.get("/households/n1").text
    response = dashboard.post(f"/api/households/n1/silences/{silence_id}/end", headers=headers)
    assert response.status_code == 403
    assert _silence(engine, silence_id).ended_early_at is None


def test_a_silence_of_a_household_without_open_incidents_still_records_who_ended_it(
    engine, dashboard, as_user, make_silence
):
    silence_id = make_silence("n2")
    headers = as_user()
    assert dashboard.post(f"/api/households/n2/silences/{silence_id}/end", headers=headers).json()[
        "done"
    ]
    assert _silence(engine, silence_id).ended_reason == "ended early by sato"
    with Session(engine) as session:
        assert session.get(Household, "n2") is not None
