"""The whole escalation, told once: nobody answers, a volunteer declines, another goes."""

from sqlmodel import Session, col, select

from data.tables import Incident, Notification
from data.tables.incidents import IncidentStatus
from notify.escalation import Outcome, resolve
from notify.replies import handle_inbound_sms


def test_it_escalates_resident_family_volunteers_until_one_claims_then_tells_everyone(
    engine, clock, roster, sms, console, open_for, tick, timeline
):
    incident_id = open_for()

    tick()  # 09:00 Tokyo: the resident is asked first
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident"]

    tick(minutes=14)  # not yet: the resident has 15 minutes
    assert len(sms.sent) == 1
    tick(minutes=1)  # no answer after 15 minutes: family
    tick(minutes=29)
    assert len(sms.sent) == 2
    tick(minutes=1)  # no answer from family after 30: the first volunteer by priority
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family", "volunteer_a"]

    tick(minutes=5)
    reply_a = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_a.phone, body="２", now=clock.now()
    )
    assert reply_a == "承知しました。ほかの方に連絡します。"
    tick()  # a "no" asks the next volunteer at once, without waiting out the 30 minutes
    assert roster.by_phone(sms.sent[-1].to) == "volunteer_b"

    reply_b = handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_b.phone, body="行きます", now=clock.now()
    )
    assert reply_b == "ありがとうございます。訪問をお願いします。"
    tick(minutes=1)  # delivers the "B is going" informs
    tick(minutes=60)  # claimed: the chain has stopped, nothing more is sent
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert incident.status == IncidentStatus.claimed
        assert incident.claimed_by_contact_id == roster.volunteer_b.id
        assert incident.next_step_at is None

    assert resolve(engine=engine, incident_id=incident_id, outcome=Outcome.fine, now=clock.now())
    tick()

    assert [(roster.by_phone(m.to), m.purpose) for m in sms.sent] == [
        ("resident", "ask"),
        ("family", "ask"),
        ("volunteer_a", "ask"),
        ("volunteer_b", "ask"),
        ("family", "inform"),  # claimed
        ("volunteer_a", "inform"),
        ("family", "inform"),  # resolved
        ("volunteer_a", "inform"),
        ("volunteer_b", "inform"),
    ]
    assert console.sent == []
    assert timeline(incident_id) == [
        ("opened", "-"),
        ("step", "-"),
        ("message", "resident"),
        ("sent", "resident"),
        ("step", "-"),
        ("message", "family"),
        ("sent", "family"),
        ("step", "-"),
        ("message", "volunteer_a"),
        ("sent", "volunteer_a"),
        ("reply", "volunteer_a"),
        ("declined", "volunteer_a"),
        ("hurried", "-"),
        ("message", "volunteer_b"),
        ("sent", "volunteer_b"),
        ("reply", "volunteer_b"),
        ("claimed", "volunteer_b"),
        ("message", "family"),
        ("message", "volunteer_a"),
        ("sent", "family"),
        ("sent", "volunteer_a"),
        ("resolved", "-"),
        ("message", "family"),
        ("message", "volunteer_a"),
        ("message", "volunteer_b"),
        ("sent", "family"),
        ("sent", "volunteer_a"),
        ("sent", "volunteer_b"),
    ]
    with Session(engine) as session:
        incident = session.get(Incident, incident_id)
        assert (incident.status, incident.outcome) == (IncidentStatus.resolved, "fine")
        topics = session.exec(select(Notification.topic).order_by(col(Notification.id))).all()
    assert topics == [
        "notify_resident",
        "notify_family",
        "notify_volunteers",
        "notify_volunteers",
        "claimed",
        "claimed",
        "resolved",
        "resolved",
        "resolved",
    ]


def test_no_message_carries_the_residents_address(engine, clock, roster, sms, open_for, tick):
    open_for()
    for minutes in (0, 15, 30, 30, 30, 30):
        tick(minutes=minutes)
    assert len(sms.sent) >= 5
    for message in sms.sent:
        assert "桜台3-14-15" not in message.body
        assert "練馬区" not in message.body
