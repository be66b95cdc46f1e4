"""Twilio's webhooks: only signed requests act, and they act like the same SMS reply would."""

from __future__ import annotations

import pytest
from sqlmodel import Session, func, select

from data.tables import Incident, IncidentEvent, Notification
from data.tables.incidents import IncidentStatus, NotificationStatus
from tests.watch.web.conftest import (
    PUBLIC_BASE,
    STRANGER,
    TWILIO_NUMBER,
    twilio_signature,
)
from watch.web import create_app

TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def _incident(engine, incident_id: int) -> Incident:
    with Session(engine) as session:
        return session.get(Incident, incident_id)


def _event_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(IncidentEvent)).one()


def _sms(phone: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": "SMfeedfacefeedfacefeedfacefeedface",
        "AccountSid": "AC00000000000000000000000000000000",
        "From": phone,
        "To": TWILIO_NUMBER,
        "Body": body,
        "NumMedia": "0",
    }


def test_a_signed_1_from_the_asked_volunteer_claims_the_incident(engine, story, post_signed):
    response = post_signed("/twilio/sms", _sms(story.volunteer.phone, "1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?>'
        "<Response><Message>ありがとうございます。訪問をお願いします。</Message></Response>"
    )
    incident = _incident(engine, story.incident_id)
    assert (incident.status, incident.claimed_by_contact_id) == (
        IncidentStatus.claimed,
        story.volunteer.id,
    )


def test_a_japanese_hai_from_the_volunteer_claims_the_incident(engine, story, post_signed):
    response = post_signed("/twilio/sms", _sms(story.volunteer.phone, "はい"))
    assert response.status_code == 200
    assert "訪問をお願いします" in response.text
    assert _incident(engine, story.incident_id).status == IncidentStatus.claimed


def test_a_forged_signature_is_refused_and_changes_nothing(engine, story, client, caplog):
    params = _sms(story.volunteer.phone, "1")
    events_before = _event_count(engine)
    forged = twilio_signature(PUBLIC_BASE + "/twilio/sms", params, token="not-the-auth-token")
    response = client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open
    assert _event_count(engine) == events_before
    assert "refused /twilio/sms: invalid Twilio signature (From +81******0003)" in caplog.text
    assert story.volunteer.phone not in caplog.text


def test_a_signed_request_with_a_changed_body_is_refused(engine, story, client):
    signed_for = _sms(story.volunteer.phone, "2")
    signature = twilio_signature(PUBLIC_BASE + "/twilio/sms", signed_for)
    tampered = {**signed_for, "Body": "1"}
    response = client.post("/twilio/sms", data=tampered, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_a_missing_signature_is_refused(engine, story, client):
    response = client.post("/twilio/sms", data=_sms(story.volunteer.phone, "1"))
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_a_signature_over_the_internal_url_is_refused_behind_the_proxy(engine, story, client):
    # The server sees http://testserver/...; Twilio signed the public URL, so only that counts.
    params = _sms(story.volunteer.phone, "1")
    signature = twilio_signature("http://testserver/twilio/sms", params)
    response = client.post("/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_without_an_auth_token_every_webhook_is_refused(engine, clock, database, story):
    from fastapi.testclient import TestClient

    from watch.settings import Settings

    app = create_app(
        engine=engine,
        settings=Settings(database_url=database.url),
        clock=clock,
        public_base_url=PUBLIC_BASE,
    )
    params = _sms(story.volunteer.phone, "1")
    signature = twilio_signature(PUBLIC_BASE + "/twilio/sms", params)
    with TestClient(app) as client:
        response = client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_an_unknown_number_gets_an_empty_twiml_answer(engine, story, post_signed):
    events_before = _event_count(engine)
    response = post_signed("/twilio/sms", _sms(STRANGER, "1"))
    assert response.status_code == 200
    assert response.text == TWIML_EMPTY
    assert _incident(engine, story.incident_id).status == IncidentStatus.open
    assert _event_count(engine) == events_before


def test_the_public_url_may_carry_a_path_prefix(engine, settings, clock, story):
    from fastapi.testclient import TestClient

    base = "https://city.example.jp/areawatch"
    app = create_app(engine=engine, settings=settings, clock=clock, public_base_url=base + "/")
    params = _sms(story.volunteer.phone, "1")
    signature = twilio_signature(base + "/twilio/sms", params)
    with TestClient(app) as client:
        response = client.post(
            "/twilio/sms", data=params, headers={"X-Twilio-Signature": signature}
        )
    assert response.status_code == 200
    assert _incident(engine, story.incident_id).status == IncidentStatus.claimed


def _keypress(callee: str, digits: str) -> dict[str, str]:
    return {
        "CallSid": "CA00000000000000000000000000000001",
        "Direction": "outbound-api",
        "From": TWILIO_NUMBER,
        "To": callee,
        "Digits": digits,
    }


def test_the_resident_pressing_1_on_a_check_in_call_closes_it_as_fine(engine, story, post_signed):
    response = post_signed("/twilio/voice/gather", _keypress(story.resident.phone, "1"))
    assert response.status_code == 200
    assert response.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        '<Say language="ja-JP">ありがとうございます。お元気で安心しました。</Say></Response>'
    )
    incident = _incident(engine, story.incident_id)
    assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")


def test_a_keypress_on_a_call_the_resident_placed_counts_too(engine, story, post_signed):
    params = {**_keypress(TWILIO_NUMBER, "1"), "Direction": "inbound", "From": story.resident.phone}
    response = post_signed("/twilio/voice/gather", params)
    assert response.status_code == 200
    assert _incident(engine, story.incident_id).status == IncidentStatus.resolved


def test_an_english_speaking_volunteer_is_thanked_in_english(engine, story, post_signed):
    with Session(engine) as session:
        volunteer = session.get(type(story.volunteer), story.volunteer.id)
        volunteer.language = "en"
        session.add(volunteer)
        session.commit()
    response = post_signed("/twilio/voice/gather", _keypress(story.volunteer.phone, "1"))
    assert '<Say language="en-US">Thank you for visiting.</Say>' in response.text
    assert _incident(engine, story.incident_id).status == IncidentStatus.claimed


def test_another_key_is_not_understood_and_changes_nothing(engine, story, post_signed):
    response = post_signed("/twilio/voice/gather", _keypress(story.resident.phone, "9"))
    assert response.status_code == 200
    assert "入力を確認できませんでした" in response.text
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_a_keypress_from_an_unknown_number_ends_the_call_silently(engine, story, post_signed):
    response = post_signed("/twilio/voice/gather", _keypress(STRANGER, "1"))
    assert response.text == TWIML_EMPTY
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def test_a_forged_keypress_is_refused(engine, story, client):
    params = _keypress(story.resident.phone, "1")
    forged = twilio_signature(PUBLIC_BASE + "/twilio/voice/gather", params, token="guess")
    response = client.post(
        "/twilio/voice/gather", data=params, headers={"X-Twilio-Signature": forged}
    )
    assert response.status_code == 403
    assert _incident(engine, story.incident_id).status == IncidentStatus.open


def _notification_status(engine, sid: str) -> NotificationStatus:
    with Session(engine) as session:
        return session.exec(
            select(Notification.status).where(Notification.provider_id == sid)
        ).one()


def _status_callback(sid: str, status: str, error_code: str | None = None) -> dict[str, str]:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC00000000000000000000000000000000",
        "MessageStatus": status,
        "SmsStatus": status,
        "To": "+819011110003",
        "From": TWILIO_NUMBER,
    }
    if error_code is not None:
        params["ErrorCode"] = error_code
    return params


def test_a_signed_delivery_report_marks_the_message_delivered(engine, story, post_signed):
    pytest.importorskip(
        "notify.status_callbacks",
        reason="notify/status_callbacks.py (handle_status_callback) is not written yet",
    )
    response = post_signed("/twilio/status", _status_callback(story.ask_sid, "delivered"))
    assert response.status_code == 204
    assert response.content == b""
    assert _notification_status(engine, story.ask_sid) == NotificationStatus.delivered


def test_a_signed_failure_report_records_the_error_code(engine, story, post_signed):
    pytest.importorskip(
        "notify.status_callbacks",
        reason="notify/status_callbacks.py (handle_status_callback) is not written yet",
    )
    params = _status_callback(story.ask_sid, "undelivered", error_code="30003")
    assert post_signed("/twilio/status", params).status_code == 204
    with Session(engine) as session:
        notification = session.exec(
            select(Notification).where(Notification.provider_id == story.ask_sid)
        ).one()
    assert notification.status == NotificationStatus.failed
    assert "30003" in notification.error


def test_a_forged_delivery_report_is_refused_and_changes_nothing(engine, story, client):
    params = _status_callback(story.ask_sid, "failed", error_code="30003")
    forged = twilio_signature(PUBLIC_BASE + "/twilio/status", params, token="guess")
    response = client.post("/twilio/status", data=params, headers={"X-Twilio-Signature": forged})
    assert response.status_code == 403
    assert _notification_status(engine, story.ask_sid) == NotificationStatus.sent


def test_a_signed_delivery_report_without_a_message_sid_is_a_bad_request(story, post_signed):
    pytest.importorskip(
        "notify.status_callbacks",
        reason="notify/status_callbacks.py (handle_status_callback) is not written yet",
    )
    response = post_signed("/twilio/status", {"MessageStatus": "delivered"})
    assert response.status_code == 400


def test_without_a_public_url_the_request_url_is_what_must_be_signed(
    engine, settings, clock, story
):
    from fastapi.testclient import TestClient

    app = create_app(engine=engine, settings=settings, clock=clock)  # facing the internet directly
    params = _sms(story.volunteer.phone, "1")
    with TestClient(app) as client:
        public = client.post(
            "/twilio/sms",
            data=params,
            headers={"X-Twilio-Signature": twilio_signature(PUBLIC_BASE + "/twilio/sms", params)},
        )
        direct = client.post(
            "/twilio/sms",
            data=params,
            headers={
                "X-Twilio-Signature": twilio_signature("http://testserver/twilio/sms", params)
            },
        )
    assert (public.status_code, direct.status_code) == (403, 200)
    assert _incident(engine, story.incident_id).status == IncidentStatus.claimed
