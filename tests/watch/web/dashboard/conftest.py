"""Fixtures for the dashboard tests: two organisations, their staff, and a flagged household.

North's household ``n1`` has an open inactivity incident, a finding and two weeks of readings;
South's household ``s1`` has an incident of its own, which North's staff must never reach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import insert
from sqlmodel import Session

from data.tables import Contact, ContactRole, Finding, Household, Incident, Organisation, Reading
from watch.web import auth, create_app
from watch.web.auth import create_user

PASSWORD = "correct horse battery"


def _add(engine, *rows):  # noqa: ANN001, ANN202
    with Session(engine) as session:
        session.add_all(rows)
        session.commit()
        for row in rows:
            session.refresh(row)
        return rows[0] if len(rows) == 1 else rows


@dataclass
class Wards:
    north_household: str
    north_incident: int
    south_household: str
    south_incident: int
    north_contacts: list[Contact]


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch):
    """argon2's production cost takes ~0.4 s a hash here; the tests only need it to be argon2."""
    monkeypatch.setattr(auth, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024))


@pytest.fixture
def make_user(engine, clock):
    def make(username: str, organisation_id: str = "north", role: str = "staff") -> str:
        with Session(engine) as session:
            create_user(
                session=session,
                organisation_id=organisation_id,
                username=username,
                password=PASSWORD,
                role=role,
                now=clock.now(),
            )
            session.commit()
        return username

    return make


@pytest.fixture
def wards(engine, clock) -> Wards:
    now = clock.now()
    _add(engine, Organisation(id="north", name="North ward"), Organisation(id="south", name="S"))
    _add(
        engine,
        Household(id="n1", organisation_id="north", name="山田 花子", area="桜台"),
        Household(id="n2", organisation_id="north", name="田中 次郎", area="旭丘"),
        Household(id="s1", organisation_id="south", name="鈴木 三郎", area="南町"),
    )
    contacts = _add(
        engine,
        Contact(
            household_id="n1", name="山田 花子", role=ContactRole.resident, phone="+819011110001"
        ),
        Contact(
            household_id="n1", name="山田 一郎", role=ContactRole.family, phone="+819011110002"
        ),
        Contact(
            household_id="n1", name="区役所 佐藤", role=ContactRole.staff, phone="+819011110003"
        ),
    )
    # Two weeks of a steady rhythm, then nothing since 14 hours ago.
    readings = [
        {
            "household_id": "n1",
            "interval_end": end,
            "kwh": 0.3 if end.hour < 12 else 0.1,
            "interval_minutes": 30,
            "received_at": end,
        }
        for i in range(28, 35 * 48)
        if (end := now - timedelta(minutes=30 * i))
    ]
    with Session(engine) as session:
        session.execute(insert(Reading), readings)  # one round trip: ~1,600 rows per test
        session.commit()
    north = _add(
        engine,
        Incident(
            household_id="n1",
            kind="inactivity",
            severity="alert",
            reason="no electricity use for 14 hours",
            score=0.97,
            opened_at=now - timedelta(hours=2),
            since=now - timedelta(hours=14),
            next_step_at=now + timedelta(minutes=20),
        ),
    )
    south = _add(
        engine,
        Incident(
            household_id="s1",
            kind="inactivity",
            severity="alert",
            reason="quiet for 10 hours",
            opened_at=now - timedelta(hours=1),
        ),
    )
    _add(
        engine,
        Finding(
            household_id="n1",
            kind="inactivity",
            severity="alert",
            score=0.97,
            reason="no electricity use for 14 hours; the TV has not been on since yesterday",
            fired_at=now - timedelta(hours=2),
            incident_id=north.id,
        ),
    )
    return Wards("n1", north.id, "s1", south.id, list(contacts))


@pytest.fixture
def dashboard(engine, settings, clock) -> TestClient:
    app = create_app(engine=engine, settings=settings, clock=clock, session_secret="test-secret")
    with TestClient(app) as client:
        yield client


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _log_in(client: TestClient, username: str, password: str = PASSWORD):  # noqa: ANN202
    token = csrf_from(client.get("/login").text)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, "next": "/"},
        follow_redirects=False,
    )


@pytest.fixture
def log_in():
    """``log_in(client, username, password=PASSWORD)``: the response to the login form."""
    return _log_in


@pytest.fixture
def form_csrf():
    """``form_csrf(html)``: the CSRF token a page's forms carry."""
    return csrf_from


@pytest.fixture
def as_user(dashboard, make_user, wards):
    """Log the dashboard client in as a new user; returns the API's CSRF header."""

    def login(username: str = "sato", organisation_id: str = "north", role: str = "staff"):
        make_user(username, organisation_id, role)
        assert _log_in(dashboard, username).status_code == 303
        return {"X-CSRF-Token": dashboard.get("/api/me").json()["csrf_token"]}

    return login
