"""Fixtures for the web tests: an app on the test database, Twilio-signed requests, and a
household whose volunteer has been asked to visit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from twilio.request_validator import RequestValidator

from data.tables import Contact, ContactRole, Household, Incident, Notification
from data.tables.incidents import NotificationStatus
from watch.settings import Settings, TwilioSettings
from watch.web import create_app

AUTH_TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC_BASE = "https://areawatch.example.jp"
TWILIO_NUMBER = "+815012340000"
STRANGER = "+819099990000"


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """What Twilio puts in ``X-Twilio-Signature`` for a POST of ``params`` to ``url``."""
    return RequestValidator(token).compute_signature(url, params)


@pytest.fixture
def settings(database) -> Settings:
    return Settings(
        database_url=database.url,
        twilio=TwilioSettings(auth_token=AUTH_TOKEN, from_number=TWILIO_NUMBER),
    )


@pytest.fixture
def client(engine, settings, clock) -> TestClient:
    """The app as Twilio reaches it: through a proxy at ``PUBLIC_BASE``."""
    app = create_app(engine=engine, settings=settings, clock=clock, public_base_url=PUBLIC_BASE)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def post_signed(client) -> Callable[..., object]:
    """POST form ``params`` to ``path`` with a valid signature over the public URL."""

    def post(path: str, params: dict[str, str]):  # noqa: ANN202
        signature = twilio_signature(PUBLIC_BASE + path, params)
        return client.post(path, data=params, headers={"X-Twilio-Signature": signature})

    return post


@dataclass
class Story:
    household_id: str
    incident_id: int
    resident: Contact
    family: Contact
    volunteer: Contact
    ask_sid: str


def _add(engine, row):  # noqa: ANN001, ANN202
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        return row


@pytest.fixture
def story(engine, clock) -> Story:
    """Hanako's household, an open inactivity incident at its volunteer step: Hanako was asked
    40 minutes ago, her son 25, her volunteer Sato 10 (``ask_sid``: sent, not yet delivered)."""
    now = clock.now()
    _add(
        engine, Household(id="h1", name="山田 花子", area="桜台三丁目", address="練馬区桜台3-14-15")
    )

    def contact(role: ContactRole, phone: str, name: str, language: str = "ja") -> Contact:
        return _add(
            engine,
            Contact(household_id="h1", name=name, role=role, phone=phone, language=language),
        )

    resident = contact(ContactRole.resident, "+819011110001", "山田 花子")
    family = contact(ContactRole.family, "+819011110002", "山田 一郎")
    volunteer = contact(ContactRole.volunteer, "+819011110003", "佐藤")
    incident = _add(
        engine,
        Incident(
            household_id="h1",
            kind="inactivity",
            severity="high",
            reason="no electricity use for 14 hours",
            score=0.97,
            opened_at=now - timedelta(minutes=40),
            since=now - timedelta(hours=14),
            step_index=2,
            next_step_at=now + timedelta(minutes=20),
        ),
    )

    def ask(contact: Contact, step_index: int, minutes_ago: int, sid: str) -> None:
        _add(
            engine,
            Notification(
                incident_id=incident.id,
                step_index=step_index,
                contact_id=contact.id,
                purpose="ask",
                topic="check",
                channel="sms",
                body="様子を確認させてください。1=大丈夫・行けます 2=行けません",
                status=NotificationStatus.sent,
                provider_id=sid,
                created_at=now - timedelta(minutes=minutes_ago),
                sent_at=now - timedelta(minutes=minutes_ago),
            ),
        )

    ask(resident, 0, 40, "SM00000000000000000000000000000000")
    ask(family, 1, 25, "SM00000000000000000000000000000001")
    ask(volunteer, 2, 10, "SM00000000000000000000000000000002")
    return Story(
        "h1", incident.id, resident, family, volunteer, "SM00000000000000000000000000000002"
    )
