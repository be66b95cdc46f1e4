"""A claim that is never reported on is chased: the person who went, then staff."""

from sqlmodel import Session, select

from data.tables import Incident, IncidentEvent
from notify.replies import handle_inbound_sms


def _claimed_by_volunteer_b(engine, clock, roster, open_for, tick) -> int:
    incident_id = open_for()
    tick()
    tick(minutes=15)
    tick(minutes=30)  # volunteer A asked
    handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_a.phone, body="2", now=clock.now()
    )
    tick()  # volunteer B asked at once
    handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="1", now=clock.now()
    )
    tick()
    return incident_id


def test_it_reminds_the_volunteer_after_an_hour_then_tells_staff_too(
    engine, clock, roster, sms, open_for, tick
):
    _claimed_by_volunteer_b(engine, clock, roster, open_for, tick)
    before = len(sms.sent)
    tick(minutes=59)
    assert len(sms.sent) == before, "no reminder within the hour"
    tick(minutes=1)
    first = [(roster.by_phone(m.to), m.purpose) for m in sms.sent[before:]]
    assert first == [("volunteer_b", "reminder")]
    tick(minutes=60)
    second = [(roster.by_phone(m.to), m.purpose) for m in sms.sent[before + 1 :]]
    assert ("volunteer_b", "reminder") in second
    assert any(who.startswith("staff") for who, _ in second)


def test_the_volunteer_reporting_all_well_closes_it_and_the_reminders_stop(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = _claimed_by_volunteer_b(engine, clock, roster, open_for, tick)
    tick(minutes=60)
    answer = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="1", now=clock.now()
    )
    assert answer == "ありがとうございます。お元気で安心しました。"
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.status, incident.outcome) == ("resolved", "fine")
        reminders = session.exec(
            select(IncidentEvent).where(IncidentEvent.kind == "claim_reminder")
        ).all()
    assert len(reminders) == 1
    sent = len(sms.sent)
    tick(minutes=180)
    assert all(m.purpose != "reminder" for m in sms.sent[sent:])


def test_the_volunteer_reporting_help_needed_closes_it_as_needed_help(
    engine, clock, roster, open_for, tick
):
    incident_id = _claimed_by_volunteer_b(engine, clock, roster, open_for, tick)
    handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="2", now=clock.now()
    )
    with Session(engine) as session:
        assert session.get(Incident, incident_id).outcome == "needed_help"
