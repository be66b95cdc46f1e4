"""Personas and factories for the escalation tests: a household with a resident, family,
volunteers and staff, inserted straight into the per-test database."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from datetime import time
from pathlib import Path

import pytest
from sqlmodel import Session

from data.tables import Contact, ContactRole, Household
from notify.channels import MemoryChannel

_FAKE_PATH = Path(__file__).resolve().parents[1] / "fakes" / "fake_twilio.py"


def _load_fake_twilio():  # noqa: ANN202
    if "fake_twilio" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fake_twilio", _FAKE_PATH)
        module = importlib.util.module_from_spec(spec)
        sys.modules["fake_twilio"] = module
        spec.loader.exec_module(module)
    return sys.modules["fake_twilio"]


@pytest.fixture
def fake_twilio() -> Iterator[object]:
    with _load_fake_twilio().FakeTwilio() as fake:
        yield fake


@pytest.fixture
def make_household(engine) -> Callable[..., Household]:
    def make(
        household_id: str = "h1",
        *,
        name: str = "山田 花子",
        area: str = "桜台三丁目",
        address: str = "東京都練馬区桜台3-14-15",
        timezone: str = "Asia/Tokyo",
    ) -> Household:
        with Session(engine) as session:
            household = Household(
                id=household_id, name=name, area=area, address=address, timezone=timezone
            )
            session.add(household)
            session.commit()
            session.refresh(household)
            return household

    return make


@pytest.fixture
def make_contact(engine) -> Callable[..., Contact]:
    def make(
        household_id: str,
        role: ContactRole | str,
        phone: str,
        *,
        name: str = "Contact",
        priority: int = 1,
        language: str = "ja",
        quiet: tuple[time, time] | None = None,
    ) -> Contact:
        with Session(engine) as session:
            contact = Contact(
                household_id=household_id,
                name=name,
                role=ContactRole(role),
                phone=phone,
                priority=priority,
                language=language,
                quiet_start=quiet[0] if quiet else None,
                quiet_end=quiet[1] if quiet else None,
            )
            session.add(contact)
            session.commit()
            session.refresh(contact)
            return contact

    return make


class Roster:
    """The personas of the full story, by name."""

    def __init__(self, **contacts: Contact) -> None:
        self.contacts = contacts
        for key, contact in contacts.items():
            setattr(self, key, contact)

    def who(self, contact_id: int | None) -> str:
        for key, contact in self.contacts.items():
            if contact.id == contact_id:
                return key
        return "operator" if contact_id is None else f"contact {contact_id}"

    def by_phone(self, phone: str) -> str:
        for key, contact in self.contacts.items():
            if contact.phone == phone:
                return key
        return phone


@pytest.fixture
def roster(make_household, make_contact) -> Roster:
    """One household: resident, a daughter, two volunteers (A before B) and a staff member."""
    make_household("h1")
    return Roster(
        resident=make_contact("h1", "resident", "+819011110001", name="山田 花子"),
        family=make_contact("h1", "family", "+819011110002", name="山田 一郎"),
        volunteer_a=make_contact("h1", "volunteer", "+819011110003", name="佐藤", priority=1),
        volunteer_b=make_contact("h1", "volunteer", "+819011110004", name="鈴木", priority=2),
        staff=make_contact("h1", "staff", "+819011110005", name="職員"),
    )


@pytest.fixture
def sms() -> MemoryChannel:
    return MemoryChannel()


@pytest.fixture
def console() -> MemoryChannel:
    return MemoryChannel()


@pytest.fixture
def channels(sms: MemoryChannel, console: MemoryChannel) -> dict[str, MemoryChannel]:
    return {"sms": sms, "console": console}


@pytest.fixture
def open_for(engine, clock) -> Callable[..., int]:
    """Open an incident (inactivity by default) at the clock's now; returns its id."""
    from notify.escalation import open_incident
    from notify.policy import DEFAULT_POLICY

    def open_(household_id: str = "h1", *, kind: str = "inactivity", policy=DEFAULT_POLICY) -> int:
        with Session(engine) as session:
            incident, _ = open_incident(
                session=session,
                household_id=household_id,
                kind=kind,
                severity="high",
                reason="no electricity use for 14 hours",
                score=0.97,
                since=clock.now(),
                now=clock.now(),
                policy=policy,
            )
            session.commit()
            return incident.id

    return open_


@pytest.fixture
def tick(engine, clock, channels) -> Callable[..., object]:
    """Advance the clock by ``minutes`` and run one escalation sweep."""
    from datetime import timedelta

    from notify.escalation import escalation_tick

    def tick_(minutes: float = 0, *, on=None, with_channels=None):  # noqa: ANN001, ANN202
        if minutes:
            clock.advance(timedelta(minutes=minutes))
        return escalation_tick(
            engine=on or engine, now=clock.now(), channels=with_channels or channels
        )

    return tick_


@pytest.fixture
def timeline(engine, roster) -> Callable[[int], list[tuple[str, str]]]:
    """An incident's events as (kind, who) pairs, in the order they were written."""
    from sqlmodel import col, select

    from data.tables import IncidentEvent

    def timeline_(incident_id: int) -> list[tuple[str, str]]:
        with Session(engine) as session:
            events = session.exec(
                select(IncidentEvent)
                .where(IncidentEvent.incident_id == incident_id)
                .order_by(col(IncidentEvent.id))
            ).all()
            return [(e.kind, roster.who(e.contact_id) if e.contact_id else "-") for e in events]

    return timeline_
