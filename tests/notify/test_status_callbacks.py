"""Delivery reports from Twilio: delivered, undelivered, and numbers that turn out invalid."""

from sqlmodel import Session, col, select

from data.tables import Contact, IncidentEvent, Notification
from data.tables.incidents import NotificationStatus
from notify.status_callbacks import handle_status_callback


def _notification(engine, contact_id):
    with Session(engine) as session:
        return session.exec(select(Notification).where(Notification.contact_id == contact_id)).one()


def _kinds(engine, incident_id):
    with Session(engine) as session:
        return session.exec(
            select(IncidentEvent.kind)
            .where(IncidentEvent.incident_id == incident_id)
            .order_by(col(IncidentEvent.id))
        ).all()


def _report(engine, clock, sid, status, code=None):
    return handle_status_callback(
        engine=engine, message_sid=sid, status=status, error_code=code, now=clock.now()
    )


def test_a_delivered_report_is_recorded_once(engine, clock, roster, open_for, tick):
    incident_id = open_for()
    tick()
    sid = _notification(engine, roster.resident.id).provider_id
    assert _report(engine, clock, sid, "sent") is True  # interim: nothing changes
    assert _notification(engine, roster.resident.id).status == NotificationStatus.sent
    assert _report(engine, clock, sid, "delivered") is True
    assert _report(engine, clock, sid, "delivered") is True  # Twilio may report twice
    assert _notification(engine, roster.resident.id).status == NotificationStatus.delivered
    assert _kinds(engine, incident_id).count("delivered") == 1


def test_a_report_for_a_message_we_never_sent_matches_nothing(engine, clock, roster):
    assert _report(engine, clock, "SM" + "9" * 32, "delivered") is False


def test_an_undelivered_ask_moves_on_to_the_next_person_at_once(
    engine, clock, roster, sms, open_for, tick
):
    incident_id = open_for()
    tick()
    sid = _notification(engine, roster.resident.id).provider_id
    tick(minutes=2)
    assert _report(engine, clock, sid, "undelivered", 30003) is True  # phone unreachable
    resident = _notification(engine, roster.resident.id)
    assert resident.status == NotificationStatus.failed and "30003" in resident.error
    tick()  # 09:02, not 09:15: the resident cannot answer a message that never arrived
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family"]
    assert {"delivery_failed", "hurried"} <= set(_kinds(engine, incident_id))
    with Session(engine) as session:
        assert session.get(Contact, roster.resident.id).disabled_at is None  # not the number


def test_an_invalid_number_reported_later_is_disabled_and_the_operators_are_told(
    engine, clock, roster, sms, console, open_for, tick
):
    incident_id = open_for()
    tick()
    tick(minutes=15)
    sid = _notification(engine, roster.family.id).provider_id
    assert _report(engine, clock, sid, "failed", 21211) is True
    with Session(engine) as session:
        family = session.get(Contact, roster.family.id)
        assert family.disabled_at == clock.now() and "21211" in family.disabled_reason
    tick()
    assert [roster.by_phone(m.to) for m in sms.sent] == ["resident", "family", "volunteer_a"]
    [alert] = console.sent
    assert alert.to == "operator" and "h1" in alert.body
    assert roster.family.phone not in alert.body
    assert {"contact_disabled", "operator_alerted"} <= set(_kinds(engine, incident_id))


def test_a_failed_inform_does_not_move_the_chain(engine, clock, roster, sms, open_for, tick):
    from notify.replies import handle_inbound_sms

    open_for()
    for minutes in (0, 15, 30):
        tick(minutes=minutes)
    handle_inbound_sms(
        engine=engine, from_phone=roster.volunteer_a.phone, body="1", now=clock.now()
    )
    tick()
    with Session(engine) as session:
        inform = session.exec(
            select(Notification).where(
                Notification.contact_id == roster.family.id, Notification.purpose == "inform"
            )
        ).one()
    assert _report(engine, clock, inform.provider_id, "undelivered", 30003) is True
    tick(minutes=45)
    assert [m.purpose for m in sms.sent] == ["ask", "ask", "ask", "inform"]
