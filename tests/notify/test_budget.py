"""The monthly SMS budget: counted in segments per Tokyo month; staff are always told."""

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, col, select

from data.tables import IncidentEvent, Organisation
from notify.budget import sms_budget_status
from notify.templates import sms_segments


def _set_budget(engine, budget):
    with Session(engine) as session:
        organisation = session.get(Organisation, "default")
        organisation.monthly_sms_budget = budget
        session.add(organisation)
        session.commit()


def _status(engine, now):
    with Session(engine) as session:
        return sms_budget_status(session, "default", now)


def _kinds(engine):
    with Session(engine) as session:
        return session.exec(select(IncidentEvent.kind).order_by(col(IncidentEvent.id))).all()


def test_segments_are_counted_per_calendar_month_in_tokyo(
    engine, clock, roster, sms, open_for, tick
):
    clock.set(datetime(2025, 1, 31, 14, 50, tzinfo=UTC))  # 23:50 on 31 January in Tokyo
    open_for()
    tick()
    resident = sms_segments(sms.sent[0].body)
    assert _status(engine, clock.now()) == (resident, None)
    tick(minutes=15)  # 00:05 on 1 February in Tokyo (still 31 January in UTC)
    family = sms_segments(sms.sent[1].body)
    assert family == 2  # Japanese text over 70 characters
    assert _status(engine, clock.now()) == (family, None)
    assert _status(engine, clock.now() - timedelta(minutes=15)) == (resident, None)


def test_when_the_budget_is_spent_only_staff_are_texted_and_the_console_is_told_once(
    engine, clock, roster, sms, console, open_for, tick
):
    _set_budget(engine, 1)  # the resident's one-segment ask fits; nothing after it does
    open_for()
    for _ in range(6):
        tick()
    tick(minutes=15)
    for _ in range(6):
        tick()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "staff"]
    assert len(console.sent) == 1 and "SMS" in console.sent[0].body
    # family, volunteer A, volunteer B were not texted: each moved the chain on at once
    assert _kinds(engine).count("sms_budget_exhausted") == 3
    used, budget = _status(engine, clock.now())
    assert budget == 1 and used == 1 + sms_segments(sms.sent[1].body)  # staff still counted


def test_a_second_incident_in_the_same_month_does_not_tell_the_console_again(
    engine, clock, roster, make_household, make_contact, sms, console, open_for, tick
):
    _set_budget(engine, 0)
    make_household("h2")
    make_contact("h2", "resident", "+819022220001")
    open_for()
    tick()
    open_for("h2")
    tick(minutes=60 * 24)
    tick()
    assert len(console.sent) == 1
    assert "+819022220001" not in [m.to for m in sms.sent]


def test_no_budget_means_unlimited(engine, clock, roster, sms, open_for, tick):
    open_for()
    tick()
    tick(minutes=15)
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]
    assert _status(engine, clock.now())[1] is None
